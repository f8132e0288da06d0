"""Each speed case of the still (issue 12) against the same job in plain diffusers, on the same modules, in one
run: FLOPs of the denoising loop (torch FlopCounterMode: UNet + ControlNets; exact, and the pass doubles as
warm-up), then --runs timed rounds in ABBA order; a table with the goals.

Real SD1.5 architecture with random weights (no download; ~8 GB RAM - run it under `flock /tmp/zr_heavy.lock`).
Cases: default, control_end_0.8, empty_pose, cfg_end_0.5, prompt_branch, fast, lcm_4step (4 LCM steps without
CFG against the default 25 x 0.55 job). Use --steps 8 --denoise 0.5 (4 steps run: cfg_end 0.5 then guides
exactly half of them).

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_speed_cases --size 256 --steps 8 --denoise 0.5 --runs 2
    python -m benchmarks.bench_speed_cases --tiny --size 64 --steps 8 --runs 1   # checks the code in ~1 min
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from ._common import (base_job, build_components, denoise_flops, finish, inputs, job_parser, load_avg, make_pipes,
                      run_ours, run_plain, start, weights_bytes)

SPEED_CASES = ("default", "control_end_0.8", "empty_pose", "cfg_end_0.5", "prompt_branch", "fast", "lcm_4step")
GOALS = {  # (FLOP ratio, wall ratio) goals against the same job in plain diffusers
    "default": ("1.00", "<= 1.02"), "control_end_0.8": ("", ""), "empty_pose": ("<= 0.80", ""),
    "cfg_end_0.5": ("<= 0.76", ""), "prompt_branch": ("<= 0.81", ""), "fast": ("<= 0.58", "<= 0.62"),
    "lcm_4step": ("", ">= 3x faster (ratio <= 0.33)"),
}


def speed_jobs(name: str, args) -> tuple:
    """(ours, plain): the settings of one case for our engine and for the same job in plain diffusers.
    Plain diffusers has no cfg_end / control_budget / empty-map switch: it runs every net on both branches."""
    from zrealism_core.settings import SAMPLER_DEFAULTS, apply_preset

    base = base_job(args, pose="random")
    ours = dict(base)
    if name == "control_end_0.8":
        ours.update(depth_end=0.8, pose_end=0.8)
    elif name == "empty_pose":
        ours.update(pose="black")  # a pose map with nobody in it
    elif name == "cfg_end_0.5":
        ours.update(cfg_end=0.5)
    elif name == "prompt_branch":
        ours.update(control_budget="prompt_branch")
    elif name == "fast":
        ours = apply_preset(ours, "fast")
    elif name == "lcm_4step":
        # 4 executed LCM steps without CFG against the default job: 25 steps x denoise 0.55 = 13 CFG steps
        d = SAMPLER_DEFAULTS
        lcm_steps = next(n for n in range(4, 100) if int(n * d["denoise"]) >= 4)
        ours.update(steps=lcm_steps, denoise=d["denoise"], cfg=1.0, scheduler="lcm")
        plain = dict(base, steps=d["steps"], denoise=d["denoise"], cfg=d["cfg"], scheduler=args.scheduler)
        return ours, plain
    plain = {k: v for k, v in ours.items() if k not in ("cfg_end", "control_budget")}
    plain.update(cfg_end=1.0, control_budget="full")
    return ours, plain


def run_job(side: str, pipe, job: dict, size: int):
    """One job on our engine (side 'ours', a ZRealismPipeline) or plain diffusers (a diffusers pipeline)."""
    img, depth, pose = inputs(size)
    if job["pose"] == "black":
        pose = np.zeros_like(pose)
    if side == "ours":
        return run_ours(pipe, job, (img, depth, pose)).image
    return run_plain(pipe, job, (img, depth, pose))


def speed_cases(args) -> dict:
    """Each case against the same job in plain diffusers, same modules, same run: FLOPs of the denoising
    loop (FlopCounterMode; this pass is also the warm-up), then `runs` timed rounds in ABBA order."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from zrealism_core.models.schedulers import SCHEDULER_NAMES

    names = list(SPEED_CASES) if args.cases == ["all"] else args.cases
    unknown = [n for n in names if n not in SPEED_CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {', '.join(SPEED_CASES)} or all")
    if "lcm_4step" in names and "lcm" not in SCHEDULER_NAMES:
        print("  lcm_4step skipped: no 'lcm' scheduler in zrealism_core.models.schedulers yet", flush=True)
        names.remove("lcm_4step")
    t0 = time.perf_counter()
    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    build_s = time.perf_counter() - t0
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    print(f"  built the {'tiny' if args.tiny else 'real SD1.5'} models in {build_s:.1f} s "
          f"({weights_bytes(mods) / 1e9:.2f} GB of fp32 weights; load {load_avg()})", flush=True)
    jobs = {n: speed_jobs(n, args) for n in names}
    res: dict = dict(build_s=build_s, size=args.size, cases={})
    plain_flops: dict = {}
    for n in names:  # FLOPs (and warm-up)
        o, p = jobs[n]
        with FlopCounterMode(display=False) as fc:
            run_job("ours", ours, o, args.size)
        key = json.dumps(p, sort_keys=True)
        if key not in plain_flops:
            with FlopCounterMode(display=False) as fc_plain:
                run_job("plain", plain, p, args.size)
            plain_flops[key] = denoise_flops(fc_plain)
        n_steps, n_plain = int(o["steps"] * o["denoise"]), int(p["steps"] * p["denoise"])
        res["cases"][n] = dict(ours_job=o, plain_job=p, ours_gflop=denoise_flops(fc) / 1e9,
                               plain_gflop=plain_flops[key] / 1e9, ours_s=[], plain_s=[], steps_run=n_steps,
                               plain_steps_run=n_plain)
        c = res["cases"][n]
        c["flop_ratio"] = c["ours_gflop"] / c["plain_gflop"]
        print(f"  {n}: denoising loop {c['ours_gflop']:.1f} GFLOP (ours) vs {c['plain_gflop']:.1f} GFLOP (plain), "
              f"ratio {c['flop_ratio']:.3f} (load {load_avg()})", flush=True)
    d = res["cases"].get("default")
    if d:
        d["gflop_per_step"] = d["plain_gflop"] / max(d["steps_run"], 1)
        print(f"  one CFG step at batch 2 with both ControlNets: {d['gflop_per_step']:.1f} GFLOP", flush=True)
    for i in range(args.runs):
        plain_done: dict = {}
        for n in names:
            o, p = jobs[n]
            key = json.dumps(p, sort_keys=True)

            def timed(side, pipe, job):
                t = time.perf_counter()
                run_job(side, pipe, job, args.size)
                return time.perf_counter() - t

            order = ("ours", "plain") if i % 2 == 0 else ("plain", "ours")
            for side in order:
                if side == "ours":
                    res["cases"][n]["ours_s"].append(timed("ours", ours, o))
                elif key not in plain_done:
                    plain_done[key] = timed("plain", plain, p)
            res["cases"][n]["plain_s"].append(plain_done[key])
            c = res["cases"][n]
            print(f"  round {i + 1} {n}: ours {c['ours_s'][-1]:.2f} s, plain {c['plain_s'][-1]:.2f} s (load {load_avg()})", flush=True)
    for n in names:
        c = res["cases"][n]
        c["wall_ratio"] = statistics.median(c["ours_s"]) / statistics.median(c["plain_s"])
        if d and d["ours_s"]:
            c["gflop_per_s"] = c["ours_gflop"] / statistics.median(c["ours_s"])
    print("\n| case | steps run (ours / plain) | FLOPs vs plain diffusers (goal) | wall vs plain diffusers (goal) | ours | plain |")
    print("|---|---|---|---|---|---|")
    for n in names:
        c = res["cases"][n]
        fg, wg = GOALS[n]
        print(f"| {n} | {c['steps_run']} / {c['plain_steps_run']} | {c['flop_ratio']:.3f} ({fg or '-'}) | {c['wall_ratio']:.3f} ({wg or '-'}) | "
              f"{statistics.median(c['ours_s']):.2f} s, {c['ours_gflop']:.0f} GFLOP | "
              f"{statistics.median(c['plain_s']):.2f} s, {c['plain_gflop']:.0f} GFLOP |")
    return res


def main(argv=None) -> int:
    ap = job_parser(__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", metavar="CASE", default=["all"],
                    help=f"speed cases against plain diffusers: {', '.join(SPEED_CASES)}, or all (the default)")
    args = ap.parse_args(argv)
    start("bench_speed_cases", args)
    print(f"Speed cases, {args.size}x{args.size}, {args.steps} steps x denoise {args.denoise}, CFG 7, {args.runs} timed rounds:", flush=True)
    return finish(speed_cases(args), args)


if __name__ == "__main__":
    sys.exit(main())
