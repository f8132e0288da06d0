"""Token merging (ToMe for SD, the `tomesd` package) in the UNet's highest-resolution self-attention: does it pay
on a CPU? (issue 20)

    python -m benchmarks.bench_tome [--size 512] [--ratios 0.3 0.5] [--runs 3]

Real SD1.5 UNet architecture with random weights, fp32, one guided step's forward (batch 2 = CFG). Timed
rounds alternate plain / each ratio; prints the median wall time of each, the ratio to plain, and how far the
UNet's output moves (relative L2; random weights: a proxy). tomesd is not a dependency of the pack:
`pip install tomesd` to run this. Nothing in the pack uses it.
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks._common import alternating_summary, build_components, finish, load_avg


def unet_forward(unet, x, t, emb):
    import torch

    with torch.no_grad():
        return unet(x, t, encoder_hidden_states=emb).sample


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="image size (the latent is size / 8)")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5], help="tomesd ratio of tokens merged")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    try:
        import tomesd
    except ImportError:
        print("bench_tome needs tomesd: pip install tomesd (the benchmark only; the pack does not use it)")
        return 2
    import torch

    print(f"bench_tome: {args.size}x{args.size}, load {load_avg()}, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    mods, _, _ = build_components(torch.float32)
    unet = mods["unet"]
    g = torch.Generator().manual_seed(0)
    n = args.size // 8
    x = torch.randn(2, 4, n, n, generator=g)
    emb = torch.randn(2, 77, 768, generator=g)
    t = torch.tensor([500.0])
    tokens = n * n
    print(f"  highest-resolution self-attention: {tokens} tokens ({n}x{n} latent)", flush=True)
    sides = ["plain"] + [f"tome {r:g}" for r in args.ratios]
    times = {s: [] for s in sides}
    outs = {}
    unet_forward(unet, x, t, emb)  # warm-up
    for _ in range(args.runs):
        for side in sides:
            if side == "plain":
                tomesd.remove_patch(unet)
            else:
                tomesd.apply_patch(unet, ratio=float(side.split()[1]))  # max_downsample 1: the highest-res blocks only
            t0 = time.perf_counter()
            out = unet_forward(unet, x, t, emb)
            times[side].append(time.perf_counter() - t0)
            outs[side] = out
    tomesd.remove_patch(unet)
    rel_l2 = lambda out, ref: (out - ref).norm() / ref.norm()  # noqa: E731
    res = {"size": args.size, "tokens": tokens,
           "sides": alternating_summary(times, outs, "plain", rel_l2, "output moved (relative L2)")}
    return finish(res, args)  # with the load at the end


if __name__ == "__main__":
    sys.exit(main())
