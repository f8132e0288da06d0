"""AnimateDiff stage cost on the real SD1.5 architecture with random weights (no download).

Builds the real-size SD1.5 UNet + 2 ControlNets + VAE + CLIP text encoder (benchmarks._common.build_components)
and a real-size SD1.5 MotionAdapter (v2 layout: 320/640/1280/1280, 2 layers, mid block, 32 frames),
then animates a 256x256 still into 8 frames with 2 denoising steps (strength 1.0), CFG on, both
ControlNets on - in two fresh subprocesses:

  shared: zrealism_core.animation as shipped - the motion UNet takes the still UNet's Parameters
          (load_state_dict(assign=True)), no second copy of the 2D weights;
  copy:   the same call with the diffusers default (UNetMotionModel.from_unet2d, what from_pipe
          does), which copies the 2D weights into the motion UNet.
  cfg_end: shared, with cfg_end 0.5 (guidance on the first half of the steps, then the motion UNet
          and the ControlNets at batch 1); compare its clip time and FLOPs with `shared`.

`--flops` also counts the denoising loop's FLOPs (torch FlopCounterMode: motion UNet + ControlNets)
in every mode; it adds a little dispatch overhead, the same for each mode.

Printed per mode: peak RSS (ru_maxrss) after building the models and after the clip, the extra
memory the clip cost, the time to build the motion pipeline, the clip time and time per frame.
Needs ~9 GB (shared) / ~13 GB (copy) RAM in fp32 and several minutes on a 2-core CPU:

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_video [--frames 8 --size 256 --steps 2] [--dtype bf16]
    flock /tmp/zr_heavy.lock python -m benchmarks.bench_video --modes shared cfg_end --steps 4 --flops

Always printed with the load average: on a shared machine timings mean little without it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ._common import build_components, denoise_flops, load_avg, make_pipes, peak_rss_mb, weights_bytes

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODES = ("shared", "copy", "cfg_end")

SD15_MOTION_CONFIG = dict(
    block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2, motion_max_seq_length=32,
    use_motion_mid_block=True, motion_num_attention_heads=8, motion_norm_num_groups=32,
)


def real_motion_adapter(dtype, seed: int = 3):
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    return MotionAdapter(**SD15_MOTION_CONFIG).to(dtype=dtype).eval().requires_grad_(False)


def child(mode: str, args) -> dict:
    import torch

    import zrealism_core.animation as anim
    from zrealism_core.animation import animate, motion_pipeline, shares_unet_weights

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    t0 = time.perf_counter()
    mods, tok, sched = build_components(dtype, tiny=args.tiny)
    if args.tiny:
        from zrealism_core.testing.tiny_motion import tiny_motion_adapter

        adapter = tiny_motion_adapter(max_seq_length=32)
    else:
        adapter = real_motion_adapter(dtype)
    ours, _plain = make_pipes(mods, tok, sched, torch.device("cpu"), dtype)
    build_s = time.perf_counter() - t0
    rss_models = peak_rss_mb()
    weights_mb = (weights_bytes(mods) + sum(p.numel() * p.element_size() for p in adapter.parameters())) / 2**20

    if mode == "copy":  # cfg_end runs like shared
        from diffusers import UNetMotionModel

        # the diffusers default (from_pipe / the pipeline constructor): copies the 2D weights
        anim.build_motion_unet = lambda unet2d, ad: UNetMotionModel.from_unet2d(unet2d, ad).to(dtype=dtype).eval()

    rs = np.random.RandomState(0)
    still, depth, pose = (rs.rand(args.size, args.size, 3).astype(np.float32) for _ in range(3))
    timings: dict = {}
    counter = None
    if args.flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
    t1 = time.perf_counter()
    with counter if counter is not None else contextlib.nullcontext():
        clip = animate(ours, still, motion_adapter=adapter, frames=args.frames, steps=args.steps, strength=1.0, cfg=7.0,
                       depth_map=depth, pose_map=pose, prompt="a photo of a person", seed=0, timings=timings,
                       decode_chunk_size=8, cfg_end=0.5 if mode == "cfg_end" else 1.0)
    clip_s = time.perf_counter() - t1
    gflop = denoise_flops(counter) / 1e9 if counter is not None else None
    shared = shares_unet_weights(ours, motion_pipeline(ours, adapter))
    return dict(
        mode=mode, dtype=args.dtype, frames=len(clip), size=args.size, steps=args.steps, build_models_s=round(build_s, 1),
        weights_mb=round(weights_mb), rss_after_models_mb=round(rss_models), rss_peak_mb=round(peak_rss_mb()),
        clip_extra_mb=round(peak_rss_mb() - rss_models), motion_pipeline_s=round(timings.get("building the motion pipeline", 0.0), 2),
        clip_s=round(clip_s, 1), s_per_frame=round(clip_s / max(len(clip), 1), 2), unet_weights_shared=shared,
        threads=torch.get_num_threads(), denoise_gflop=gflop,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--modes", nargs="*", default=["shared", "copy", "cfg_end"], choices=MODES)
    ap.add_argument("--flops", action="store_true", help="also count the denoising loop's FLOPs (FlopCounterMode)")
    ap.add_argument("--tiny", action="store_true", help="tiny models (checks the code only)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args)), flush=True)
        return 0

    print(f"AnimateDiff fuse, {'tiny models' if args.tiny else 'real SD1.5 architecture'} (random weights), {args.frames} frames {args.size}x{args.size}, "
          f"{args.steps} steps, CFG, 2 ControlNets, {args.dtype}, CPU")
    results = {}
    for mode in args.modes:
        load_before = load_avg()
        cmd = [sys.executable, "-m", "benchmarks.bench_video", "--child", mode, "--frames", str(args.frames), "--size", str(args.size),
               "--steps", str(args.steps), "--dtype", args.dtype] + ["--flops"] * args.flops + ["--tiny"] * args.tiny
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(f"{mode}: FAILED (exit {proc.returncode})\n{proc.stderr[-3000:]}")
            return 1
        r = json.loads(lines[-1][len("RESULT "):])
        results[mode] = r
        print(f"- {mode:6s}: weights {r['weights_mb']} MB; peak RSS after building {r['rss_after_models_mb']} MB, "
              f"after the clip {r['rss_peak_mb']} MB (+{r['clip_extra_mb']} MB); motion pipeline built in "
              f"{r['motion_pipeline_s']} s; clip {r['clip_s']} s = {r['s_per_frame']} s/frame; "
              f"2D weights shared: {r['unet_weights_shared']}"
              + (f"; denoising loop {r['denoise_gflop']:.1f} GFLOP" if r.get("denoise_gflop") is not None else "")
              + f"; load before {load_before}, after {load_avg()}")
    if "shared" in results and "copy" in results:
        saved = results["copy"]["rss_peak_mb"] - results["shared"]["rss_peak_mb"]
        print(f"weight sharing saves {saved} MB of peak RSS "
              f"({results['copy']['rss_peak_mb']} -> {results['shared']['rss_peak_mb']} MB); "
              f"time per frame {results['copy']['s_per_frame']} (copy) vs {results['shared']['s_per_frame']} s (shared)")
    if "shared" in results and "cfg_end" in results:
        a, b = results["shared"], results["cfg_end"]
        flops = (f", denoising FLOPs {b['denoise_gflop'] / a['denoise_gflop']:.3f}" if a.get("denoise_gflop") else "")
        print(f"cfg_end 0.5 against cfg_end 1.0 ({args.frames} frames, {args.steps} steps): clip time "
              f"{b['clip_s'] / a['clip_s']:.3f}{flops}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
