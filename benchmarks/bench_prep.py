"""Milliseconds per 1024x1024 image for WhiteBackgroundPrep and HeuristicAnalyzer (issue 2 goals:
prep <= 40 ms, analyze <= 60 ms, CPU). Prints the median (and 90th percentile) of N runs and the
machine load, since timings on a shared machine are only meaningful next to it.

    python -m benchmarks.bench_prep [--runs 30] [--size 1024] [--json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time

import numpy as np


def _time(fn, runs: int):
    """(median wall ms, p90 wall ms, median CPU ms). CPU time (all threads of this process) is
    less sensitive to other people's jobs than wall time on a shared machine."""
    fn()  # warm-up: OpenCV builds its colour tables on first use
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    return statistics.median(wall), float(np.percentile(wall, 90)), statistics.median(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import cv2

    from zrealism_core.analysis import analyze
    from zrealism_core.prep import prepare_white_background
    from zrealism_core.imaging.sample import sample_character
    from zrealism_core.text.tokens import count_tokens

    n = args.size
    flat = sample_character(n, "flat")  # float32 H,W,3 (what a ComfyUI IMAGE gives)
    flat_u8 = (flat * 255 + 0.5).astype(np.uint8)  # what a PNG file gives
    rgba = sample_character(n)
    prepped = prepare_white_background(flat)
    count_tokens("warm up")  # tokenizer load is a one-off (cached), not part of the figure

    counter = itertools.count()
    load_before = os.getloadavg()
    cases = {
        "prep auto (float32 input)": lambda: prepare_white_background(flat),
        "prep auto (uint8 input)": lambda: prepare_white_background(flat_u8),
        "prep alpha (RGBA input)": lambda: prepare_white_background(rgba),
        "analyze (with mask)": lambda: analyze(prepped.image, prepped.mask),
        "analyze (auto mask)": lambda: analyze(prepped.image),
        # token counts are cached per text: a new subject each run measures uncached prompt building
        "analyze (new subject/run)": lambda: analyze(prepped.image, prepped.mask, subject=f"a girl number {next(counter)}"),
    }
    results = {name: _time(fn, args.runs) for name, fn in cases.items()}
    load_after = os.getloadavg()

    info = {
        "size": f"{n}x{n}",
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "opencv_threads": cv2.getNumThreads(),
        "load_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "ms_wall_median_p90_cpu_median": {k: [round(a, 1), round(b, 1), round(c, 1)] for k, (a, b, c) in results.items()},
        "goals_ms": {"prep": 40, "analyze": 60},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Z-Realism prep/analyze benchmark: {n}x{n}, {args.runs} runs, {os.cpu_count()} CPUs, "
          f"OpenCV threads {cv2.getNumThreads()}, load (1 min) {load_before[0]:.2f} -> {load_after[0]:.2f}")
    for name, (med, p90, cpu) in results.items():
        goal = 40 if name.startswith("prep") else 60
        print(f"  {name:28s} {med:7.1f} ms median  {p90:7.1f} ms p90  {cpu:7.1f} ms CPU  (goal <= {goal} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
