"""Our still engine against plain diffusers on the CPU: wall and CPU time, peak RSS, fp32 against bf16.

Real SD1.5 architecture with random weights (no download; ~8 GB RAM - run it under `flock /tmp/zr_heavy.lock`).
  1. speed: our engine (zrealism_core.engine.transform) against plain diffusers
     StableDiffusionControlNetImg2ImgPipeline + MultiControlNetModel on the SAME module objects, same
     scheduler/steps/strength (so the same number of UNet evaluations), runs in ABBA order. Prints the median
     time ratio (goal <= 1.02).
  2. peak RSS of each side, each in its own fresh subprocess (goal <= 1.10 x the resident weights).
  3. fp32 against bf16 for our engine (goal: bf16 >= 2x faster on CPUs with avx512_bf16).

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_cpu_speed [--steps 6 --denoise 0.5] [--runs 2]
    python -m benchmarks.bench_cpu_speed --tiny --size 64 --runs 1   # checks the code, gives no figures
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np

from ._common import (REPO, base_job, build_components, finish, inputs, job_parser, load_avg, make_pipes, peak_rss_mb,
                      reset_peak_rss, run_ours, run_plain, start, vm_hwm_mb, weights_bytes)


def timed(fn):
    """(wall s, CPU s of this process, result): CPU seconds are less disturbed by other users than wall time."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def cpu_speed(args) -> dict:
    import torch

    t0 = time.perf_counter()
    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    build_s = time.perf_counter() - t0
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    job, images = base_job(args), inputs(args.size)
    t_ours, t_plain, c_ours, c_plain = [], [], [], []
    run_ours(ours, job, images)  # warm-up (first-call allocations) for both: they share modules
    same = None
    for i in range(args.runs):
        # ABBA order (ours first on even runs, plain first on odd ones) so neither side always runs first
        def timed_ours():
            return timed(lambda: run_ours(ours, job, images).image)

        def timed_plain():
            return timed(lambda: run_plain(plain, job, images))

        if i % 2 == 0:
            dt, co, r = timed_ours()
            dt2, cp, img = timed_plain()
        else:
            dt2, cp, img = timed_plain()
            dt, co, r = timed_ours()
        t_ours.append(dt)
        t_plain.append(dt2)
        c_ours.append(co)
        c_plain.append(cp)
        same = float(np.abs(r - img).max())
        print(f"  run {i + 1} ({'ours' if i % 2 == 0 else 'plain'} first): ours {dt:.2f} s ({co:.1f} CPU-s), "
              f"plain diffusers {dt2:.2f} s ({cp:.1f} CPU-s) "
              f"(load {load_avg()})", flush=True)
    res = dict(build_s=build_s, ours_s=t_ours, plain_s=t_plain, ours_cpu_s=c_ours, plain_cpu_s=c_plain,
               ratio=statistics.median(t_ours) / statistics.median(t_plain),
               cpu_ratio=statistics.median(c_ours) / statistics.median(c_plain),
               max_abs_diff=same, weights_gb=weights_bytes(mods) / 1e9)
    if args.bf16:
        for m in mods.values():
            m.to(torch.bfloat16)
        ours_bf = make_pipes(mods, tok, sched, torch.device("cpu"), torch.bfloat16)[0]
        run_ours(ours_bf, job, images)
        t_bf = []
        for i in range(args.runs):
            dt, _, _ = timed(lambda: run_ours(ours_bf, job, images))
            t_bf.append(dt)
            print(f"  bf16 run {i + 1}: ours {dt:.2f} s (load {load_avg()})", flush=True)
        res["bf16_s"] = t_bf
        res["bf16_speedup"] = statistics.median(t_ours) / statistics.median(t_bf)
    return res


def cpu_rss_side(args) -> dict:
    """One side in a fresh process: build, run once, report peak RSS against the weights."""
    import gc

    import torch

    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    build_peak = peak_rss_mb()
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    job, images = base_job(args), inputs(args.size)
    gc.collect()
    reset = reset_peak_rss()  # measure the job, not the random-weight build (which briefly holds temporaries)
    if args.side == "ours":
        dt, _, _ = timed(lambda: run_ours(ours, job, images))
    else:
        dt, _, _ = timed(lambda: run_plain(plain, job, images))
    w = weights_bytes(mods) / 2**20
    peak = vm_hwm_mb()
    return dict(side=args.side, seconds=dt, peak_rss_mb=peak, build_peak_rss_mb=build_peak, weights_mb=w,
                peak_over_weights=peak / w, peak_is_run_only=reset)


def rss_sides(args) -> dict:
    """Each side's peak RSS, each in a fresh subprocess of this script."""
    out = {}
    for side in ("ours", "plain"):
        cmd = [sys.executable, "-m", "benchmarks.bench_cpu_speed", "--side", side, "--size", str(args.size), "--steps",
               str(args.steps), "--denoise", str(args.denoise), "--scheduler", args.scheduler]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--tiny"] if args.tiny else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            print(proc.stderr[-2000:])
            raise SystemExit(f"RSS subprocess for {side} failed")
        r = json.loads(line[-1][7:])
        out[side] = r
        print(f"  peak RSS {side} during the job: {r['peak_rss_mb']:.0f} MB = {r['peak_over_weights']:.3f} x the "
              f"{r['weights_mb']:.0f} MB of weights (building the random weights peaked at {r['build_peak_rss_mb']:.0f} MB; "
              f"run {r['seconds']:.1f} s; load {load_avg()})", flush=True)
    return out


def main(argv=None) -> int:
    ap = job_parser(__doc__.splitlines()[0])
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--no-rss", dest="rss", action="store_false")
    ap.add_argument("--side", choices=["ours", "plain"], help="internal: one side's peak RSS, in a fresh process")
    args = ap.parse_args(argv)
    if args.side:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(cpu_rss_side(args)), flush=True)
        return 0
    start("bench_cpu_speed", args)
    print(f"CPU speed, {args.size}x{args.size}, {int(args.steps * args.denoise)} UNet steps (CFG), interleaved:", flush=True)
    res = cpu_speed(args)
    print(f"  median ratio ours/plain = {res['ratio']:.3f} wall, {res['cpu_ratio']:.3f} CPU time (goal <= 1.02); "
          f"max |diff| = {res['max_abs_diff']:.2e}")
    if "bf16_speedup" in res:
        print(f"  bf16 speed-up over fp32 = {res['bf16_speedup']:.2f}x (goal >= 2)")
    if args.rss:
        res["rss"] = rss_sides(args)
    return finish(res, args)


if __name__ == "__main__":
    sys.exit(main())
