"""The VAE decode on a CPU: plain, channels-last and tiled, at the job's size (issue 20).

    python -m benchmarks.bench_vae_decode [--size 512] [--runs 3]

Real SD1.5 VAE architecture with random weights, fp32, one image. Timed rounds alternate the variants;
prints the median wall time of each, the ratio to plain and the largest pixel difference from plain (the
arithmetic order changes with the memory layout or the tiles; 1.0 = the full 0..1 range). Tiled decodes
256-px tiles (diffusers' enable_tiling with its overlap and blend), so it only tiles from 512² up.
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks._common import alternating_summary, build_components, finish, load_avg


def decode(vae, z, variant: str):
    import torch

    with torch.no_grad():
        if variant == "channels_last":
            vae.to(memory_format=torch.channels_last)
            z = z.contiguous(memory_format=torch.channels_last)
        else:
            vae.to(memory_format=torch.contiguous_format)
        if variant == "tiled":
            vae.enable_tiling()
            vae.tile_sample_min_size, vae.tile_latent_min_size = 256, 32  # tiles of 256 px (at 512²: 4 with overlap)
        else:
            vae.disable_tiling()
        img = vae.decode(z).sample
    return (img / 2 + 0.5).clamp(0, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    import torch

    print(f"bench_vae_decode: {args.size}x{args.size}, load {load_avg()}, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    mods, _, _ = build_components(torch.float32)
    vae = mods["vae"]
    n = args.size // 8
    z = torch.randn(1, 4, n, n, generator=torch.Generator().manual_seed(0)) / vae.config.scaling_factor
    variants = ["plain", "channels_last", "tiled"]
    times = {v: [] for v in variants}
    outs = {}
    decode(vae, z, "plain")  # warm-up
    for _ in range(args.runs):
        for v in variants:
            t0 = time.perf_counter()
            outs[v] = decode(vae, z, v)
            times[v].append(time.perf_counter() - t0)
    max_abs = lambda out, ref: (out - ref).abs().max()  # noqa: E731
    res = {"size": args.size, "variants": alternating_summary(times, outs, "plain", max_abs, "max |diff|")}
    return finish(res, args)  # with the load at the end


if __name__ == "__main__":
    sys.exit(main())
