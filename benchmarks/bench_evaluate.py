"""Timing of the fidelity evaluator on this machine.

    python -m benchmarks.bench_evaluate [--runs 7]

Prints the median ms per 512x512 still pair (`evaluate`: a character on white, and a full-frame
photo = worst case, every pixel is "character") and per frame pair of the temporal term (DIS flow
forward + backward, occlusion mask, warp). Goals: <= 250 ms per pair, <= 60 ms per frame pair.
Run it alone (e.g. under `flock /tmp/zr_heavy.lock`) and quote `uptime` load with the figures.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import cv2
import numpy as np

from zrealism_core.evaluation import evaluate, evaluate_video
from zrealism_core.imaging.sample import pink_noise, sample_character
from zrealism_core.metrics.temporal import temporal_consistency

SIZE = 512


def _pairs():
    drawing = sample_character(SIZE, (1.0, 1.0, 1.0))
    mask = sample_character(SIZE)[..., 3:4] > 0.5
    tex = 1.0 + 0.10 * pink_noise(SIZE, 0, 1.5)[..., None]
    result = np.clip(np.where(mask, cv2.GaussianBlur(drawing, (0, 0), 0.8) * tex, drawing), 0, 1).astype(np.float32)
    try:
        from skimage import data

        photo = cv2.resize(data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    except Exception:  # skimage data missing: a synthetic full-frame texture instead
        photo = np.clip(0.5 + 0.15 * np.stack([pink_noise(SIZE, s, 2.0) for s in range(3)], -1), 0, 1)
    return drawing, result, photo


def _median_ms(fn, runs: int) -> tuple:
    """(median wall ms, median process CPU ms). CPU time is less sensitive to other users'
    load on a shared box (it sums all threads, so it can exceed wall time)."""
    fn()  # warm-up (imports, model load, first-call allocations)
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None,
                    help="cv2.setNumThreads(N) first. With 1, CPU time is the real work: OpenCV's idle "
                         "worker threads spin after parallel calls and inflate a multi-threaded CPU time.")
    args = ap.parse_args(argv)
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    drawing, result, photo = _pairs()
    shifted = np.roll(photo, 8, axis=1)
    clip = [np.ascontiguousarray(np.roll(photo, t, axis=1)) for t in range(9)]
    char_clip = [np.ascontiguousarray(np.roll(result, t, axis=1)) for t in range(9)]

    def per(x, n):
        return x[0] / n, x[1] / n

    rows = [
        ("evaluate, character on white, 512x512", _median_ms(lambda: evaluate(drawing, result), args.runs), 250, "pair"),
        ("evaluate, full-frame photo, 512x512", _median_ms(lambda: evaluate(photo, shifted), args.runs), 250, "pair"),
        ("temporal, full-frame photo, 512x512",
         per(_median_ms(lambda: temporal_consistency(clip), max(2, args.runs // 2)), len(clip) - 1), 60, "frame pair"),
        ("evaluate_video, 9 frames character, per frame",
         per(_median_ms(lambda: evaluate_video(drawing, char_clip), max(2, args.runs // 3)), len(char_clip)), None, "frame"),
    ]
    print(f"cv2 threads {cv2.getNumThreads()}, cpu count {os.cpu_count()}")
    for name, (ms, cpu_ms), goal, unit in rows:
        verdict = "" if goal is None else ("  (goal <= %d ms: %s)" % (goal, "met" if ms <= goal else "MISSED"))
        print(f"{name:48s} {ms:8.1f} ms wall ({cpu_ms:6.1f} ms CPU) per {unit}{verdict}")
    try:
        print("load:", open("/proc/loadavg").read().strip())
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
