"""Our still engine on the GPU: time per image and peak VRAM with the models on the GPU and with model CPU
offload, and the same job in plain diffusers on the same modules (the ratio). Needs a CUDA GPU: without one it
says so and measures nothing.

512x512 fp16 (--gpu-size), real SD1.5 architecture with random weights (no download).

    python -m benchmarks.bench_gpu [--steps 20 --denoise 0.6 --runs 3]
    python -m benchmarks.bench_gpu --tiny --gpu-size 64 --runs 1   # checks the code, gives no figures

The out-of-memory fallback with the GPU memory capped is checked by tests/test_gpu_fallback.py.
"""
from __future__ import annotations

import statistics
import sys
import time

from ._common import base_job, build_components, finish, inputs, job_parser, make_pipes, run_ours, run_plain, start, weights_bytes


def gpu_bench(args) -> dict:
    import torch

    from zrealism_core.runtime.fallback import Attempt

    dev = torch.device("cuda")
    out: dict = dict(gpu=torch.cuda.get_device_name(0), size=args.gpu_size, steps=args.steps, denoise=args.denoise)
    t0 = time.perf_counter()
    mods, tok, sched = build_components(torch.float16, device="cuda", tiny=args.tiny)
    out["build_s"] = time.perf_counter() - t0
    out["weights_gb"] = weights_bytes(mods) / 1e9
    ours, plain = make_pipes(mods, tok, sched, dev, torch.float16)

    def timed(label, fn):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        fn()  # warm-up
        times = []
        for _ in range(args.runs):
            torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        out[label] = dict(s=statistics.median(times), all_s=times,
                          peak_alloc_gb=torch.cuda.max_memory_allocated() / 2**30,
                          peak_reserved_gb=torch.cuda.max_memory_reserved() / 2**30)
        print(f"  {label}: {out[label]}", flush=True)

    job, images = base_job(args), inputs(args.gpu_size)
    timed("ours_gpu", lambda: run_ours(ours, job, images))
    timed("plain_gpu", lambda: run_plain(plain, job, images))
    out["ratio_gpu"] = out["ours_gpu"]["s"] / out["plain_gpu"]["s"]
    # model CPU offload: the weights live in RAM; each model visits the GPU while it runs
    offload = Attempt(dev, torch.float16, True, "benchmark: offload")
    timed("ours_offload", lambda: run_ours(ours, job, images, prepare=lambda a: ours.place(offload)))
    ours.restore(offload)
    return out


def main(argv=None) -> int:
    ap = job_parser(__doc__.splitlines()[0])
    ap.add_argument("--gpu-size", type=int, default=512)
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here, nothing measured", flush=True)
        return 0
    start("bench_gpu", args)
    return finish(gpu_bench(args), args)


if __name__ == "__main__":
    sys.exit(main())
