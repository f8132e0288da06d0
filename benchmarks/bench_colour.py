"""Our LAB conversions (zrealism_core.imaging.colour.rgb_to_lab / lab_to_rgb) against scikit-image's
rgb2lab / lab2rgb, and scikit-image's deltaE_ciede2000 (which zrealism_core.imaging.colour.ciede2000
calls) on float32 against float64 input, on what the evaluator and the colour lock feed them: every
pixel of a 192x192 working image (COLOR_WORK_SIZE) and of a 512x512 still, as (N, 3) arrays.

    python -m benchmarks.bench_colour [--runs 15]

Prints the median ms of each side, the ratio skimage / ours measured in the same run (interleaved),
and the largest difference between the two results. Quote `uptime` load with the figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def compare(label: str, ours, theirs, runs: int, names=("ours", "scikit-image")) -> dict:
    ours()
    theirs()  # warm-up (imports, first-call allocations)
    t_ours, t_theirs = [], []
    for i in range(runs):  # interleaved, alternating who goes first
        pair = [(t_ours, ours), (t_theirs, theirs)]
        for times, fn in (pair if i % 2 == 0 else pair[::-1]):
            times.append(_median_ms(fn, 1))
    a, b = statistics.median(t_ours), statistics.median(t_theirs)
    diff = float(np.abs(np.asarray(ours(), np.float64) - np.asarray(theirs(), np.float64)).max())
    print(f"  {label:22s} {names[0]} {a:8.2f} ms   {names[1]} {b:8.2f} ms   ratio {b / a:5.2f}x   max |diff| {diff:.2e}",
          flush=True)
    return dict(ours_ms=a, skimage_ms=b, ratio=b / a, max_diff=diff)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

    from zrealism_core.imaging.colour import lab_to_rgb, rgb_to_lab

    print(f"bench_colour: load {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rng = np.random.default_rng(0)
    for side in (192, 512):
        a = rng.random((side * side, 3)).astype(np.float32)
        b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
        la, lb = rgb_to_lab(a), rgb_to_lab(b)
        print(f"{side}x{side} pixels:")
        compare("rgb -> lab", lambda: rgb_to_lab(a), lambda: rgb2lab(a), args.runs)
        compare("lab -> rgb", lambda: lab_to_rgb(la), lambda: lab2rgb(la), args.runs)
        la64, lb64 = la.astype(np.float64), lb.astype(np.float64)
        compare("CIEDE2000 (skimage)", lambda: deltaE_ciede2000(la, lb), lambda: deltaE_ciede2000(la64, lb64), args.runs,
                names=("float32", "float64"))
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
