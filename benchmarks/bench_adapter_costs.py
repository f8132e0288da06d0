"""What a LoRA and an IP-Adapter add to a still job, against the plain job on the same pipeline.

Runs interleaved (plain, LoRA, IP-Adapter, ...): the LoRA's activation time per job (apply before + exact
restore after, the job's "applying LoRAs" + "restoring LoRA weights" stages) and its share of the job, then
LoRA jobs back to back (the weights stay patched); the IP-Adapter's (plus, ViT-H/14) cost per denoising step
relative to the plain job's step, and its image-embedding time (once per reference image and device).
Real SD1.5 / ViT-H shapes with random weights (+ ~2.6 GB for the encoder); --tiny checks the code.

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_adapter_costs [--gpu] [--lora-rank 32] [--runs 3]
    python -m benchmarks.bench_adapter_costs --tiny --size 64 --runs 1   # checks the code, gives no figures
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from ._common import base_job, build_components, finish, inputs, job_parser, load_avg, make_pipes, run_ours, start


def adapter_costs(args) -> dict:
    """LoRA activation time per job and IP-Adapter cost per step, each relative to the plain job."""
    import tempfile

    import torch

    from zrealism_core import CLIP_VISION_H14_CONFIG
    from zrealism_core.runtime.fallback import expected_steps
    from zrealism_core.testing import tiny_ip_adapter as tip
    from zrealism_core.testing import tiny_loras

    dev = torch.device("cuda" if args.gpu else "cpu")
    dtype = torch.float16 if args.gpu else torch.float32
    size = args.gpu_size if args.gpu else args.size
    mods, tok, sched = build_components(dtype, device=dev, tiny=args.tiny)
    ours, _ = make_pipes(mods, tok, sched, dev, dtype)
    n = expected_steps(args.steps, args.denoise)
    res: dict = dict(tiny=args.tiny, device=str(dev), size=size, steps=n, lora_rank=args.lora_rank)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        lora_path = tiny_loras.write_kohya_lora(Path(tmp, "bench-lora.safetensors"), unet=mods["unet"],
                                                text_encoder=mods["text_encoder"], rank=args.lora_rank, alpha=args.lora_rank / 2,
                                                conv=False, std=0.01)
        if args.tiny:
            enc_cfg, ip_kw = tip.tiny_clip_vision_config(), dict(dim=32, heads=1)
        else:
            enc_cfg = {k: v for k, v in json.loads(Path(CLIP_VISION_H14_CONFIG).read_text()).items()
                       if k not in ("architectures", "model_type")}
            ip_kw = dict(dim=768, heads=12, queries=16)  # ip-adapter-plus_sd15's Resampler
        cv_path = tip.write_tiny_clip_vision(Path(tmp, "clip-vision.safetensors"), **enc_cfg)
        ip_path = tip.write_tiny_ip_adapter(Path(tmp, "ip-adapter-plus.safetensors"), "plus", unet=mods["unet"], encoder=enc_cfg, std=0.02, **ip_kw)
        res["write_files_s"] = time.perf_counter() - t
        res["lora_mb"] = round(lora_path.stat().st_size / 2**20, 1)
        img, depth, pose = inputs(size)
        t = time.perf_counter()
        lora_view = ours.with_lora(lora_path, 0.8)
        res["lora_read_s"] = time.perf_counter() - t
        res["lora_layers"] = len(lora_view.loras[0][0].layers)
        t = time.perf_counter()
        ip_view = ours.with_ip_adapter(ip_path, cv_path, img, weight=0.6)
        res["ip_load_s"] = time.perf_counter() - t

        def job(pipe):
            t0 = time.perf_counter()
            r = run_ours(pipe, base_job(args), (img, depth, pose))
            if args.gpu:
                torch.cuda.synchronize()
            return time.perf_counter() - t0, r.timings

        for pipe in (ours, lora_view, ip_view):  # warm-up (first-call allocations; the IP image embedding)
            _, tm = job(pipe)
            if pipe is ip_view:
                res["ip_image_embedding_s"] = tm.get("IP-Adapter image embedding", 0.0)
        rows = {"plain": [], "lora": [], "ip": [], "lora again": []}
        switching = 0.0  # LoRA apply + restore over the interleaved jobs (the restore lands in the job after)
        for i in range(args.runs):
            for name, pipe in (("plain", ours), ("lora", lora_view), ("ip", ip_view)) if i % 2 == 0 else \
                    (("ip", ip_view), ("lora", lora_view), ("plain", ours)):
                total, tm = job(pipe)
                act = tm.get("applying LoRAs", 0.0) + tm.get("restoring LoRA weights", 0.0)
                switching += act
                rows[name].append(dict(total=total, synth=tm.get("synthesizing", 0.0), activation=act))
            print(f"  run {i + 1}: " + ", ".join(f"{k} {v[-1]['total']:.2f} s" for k, v in rows.items() if v)
                  + f" (load {load_avg()})", flush=True)
        job(lora_view)  # then LoRA jobs back to back: the weights stay patched (pipe_view.set_loras)
        for i in range(args.runs):
            total, tm = job(lora_view)
            rows["lora again"].append(dict(total=total, synth=tm.get("synthesizing", 0.0),
                                           activation=tm.get("applying LoRAs", 0.0) + tm.get("restoring LoRA weights", 0.0)))
        again = ", ".join(f"{r['total']:.2f}" for r in rows["lora again"])
        print(f"  back to back: lora {again} s (load {load_avg()})", flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("total", "synth", "activation")} for k, v in rows.items()}
    res["median"] = med
    res["lora_activation_s"] = switching / max(1, args.runs)  # per LoRA job that follows / precedes other weights
    res["lora_activation_share_of_plain_job"] = res["lora_activation_s"] / med["plain"]["total"]
    res["lora_job_ratio"] = med["lora"]["total"] / med["plain"]["total"]
    res["lora_step_ratio"] = med["lora"]["synth"] / med["plain"]["synth"]  # the same weights shape: should be ~1
    res["lora_again_activation_s"] = med["lora again"]["activation"]
    res["lora_again_job_ratio"] = med["lora again"]["total"] / med["plain"]["total"]
    res["lora_again_step_ratio"] = med["lora again"]["synth"] / med["plain"]["synth"]
    res["ip_step_ratio"] = med["ip"]["synth"] / med["plain"]["synth"]
    res["ip_extra_per_step_s"] = (med["ip"]["synth"] - med["plain"]["synth"]) / max(1, n)
    res["ip_job_ratio"] = med["ip"]["total"] / med["plain"]["total"]
    print(f"  LoRA ({res['lora_layers']} layers, rank {args.lora_rank}, {res['lora_mb']} MB), alternating with other weights: "
          f"activation {res['lora_activation_s']:.3f} s per job = {res['lora_activation_share_of_plain_job']:.1%} of the plain job; "
          f"job ratio {res['lora_job_ratio']:.3f}, per-step ratio {res['lora_step_ratio']:.3f}", flush=True)
    print(f"  LoRA back to back (weights stay patched): activation {res['lora_again_activation_s']:.3f} s, "
          f"job ratio {res['lora_again_job_ratio']:.3f}, per-step ratio {res['lora_again_step_ratio']:.3f}", flush=True)
    print(f"  IP-Adapter plus: per-step ratio {res['ip_step_ratio']:.3f} (+{res['ip_extra_per_step_s'] * 1000:.1f} ms/step), "
          f"job ratio {res['ip_job_ratio']:.3f}, image embedding {res.get('ip_image_embedding_s', 0.0):.3f} s once per reference", flush=True)
    return res


def main(argv=None) -> int:
    ap = job_parser(__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="fp16 on the GPU, at --gpu-size")
    ap.add_argument("--gpu-size", type=int, default=512)
    ap.add_argument("--lora-rank", type=int, default=32, help="rank of the benchmark's LoRA")
    args = ap.parse_args(argv)
    start("bench_adapter_costs", args)
    return finish(adapter_costs(args), args)


if __name__ == "__main__":
    sys.exit(main())
