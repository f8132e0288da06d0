"""Still-image engine cost on the real SD1.5 architecture with random weights (no download).

CPU (default; needs ~8 GB RAM - run it under `flock /tmp/zr_heavy.lock`):
  1. speed: our engine (zrealism_core.engine.transform) against plain diffusers
     StableDiffusionControlNetImg2ImgPipeline + MultiControlNetModel on the SAME module objects,
     256x256, same scheduler/steps/strength (so the same number of UNet evaluations), runs interleaved
     (ours, plain, ours, plain ...). Prints the median time ratio (goal <= 1.02).
  2. peak RSS of each side, each in its own fresh subprocess (goal <= 1.10 x the resident weights).
  3. fp32 against bf16 for our engine (goal: bf16 >= 2x faster on CPUs with avx512_bf16).
GPU (--gpu): 512x512 fp16, our engine with the models on the GPU and with model CPU offload: time
and peak VRAM (torch.cuda.max_memory_allocated), plus the same plain-diffusers ratio, and a real
out-of-memory fallback check with the GPU memory capped (--oom-check).
  6. --cases (issue 12): each speed case against the same job in plain diffusers on the same modules, in
     one run: FLOPs of the denoising loop (torch FlopCounterMode: UNet + ControlNets; exact, and the
     pass doubles as warm-up), then --runs timed rounds in ABBA order; a table with the goals.
     Cases: default, control_end_0.8, empty_pose, cfg_end_0.5, prompt_branch, fast, lcm_4step (4 LCM
     steps without CFG against the default 25 x 0.55 job). Use --steps 8 --denoise 0.5 (4 steps run:
     cfg_end 0.5 then guides exactly half of them).

  4. --control-end-check: control end 0.8 (both nets), ControlNet calls counted per net with forward
     hooks, ours and plain diffusers, against diffusers' window rule (ours must skip the steps outside
     the window, plain diffusers runs every net on every step), plus the time ratio of the two.

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_still [--steps 6 --denoise 0.5] [--runs 2]
    python -m benchmarks.bench_still --gpu [--oom-check]
    python -m benchmarks.bench_still --control-end-check [--control-end 0.8] [--tiny --size 64]
    flock /tmp/zr_heavy.lock python -m benchmarks.bench_still --adapter-costs [--gpu] [--lora-rank 32] [--tiny --size 64]
    flock /tmp/zr_heavy.lock python -m benchmarks.bench_still --cases all --size 256 --steps 8 --denoise 0.5 --runs 2
    python -m benchmarks.bench_still --cases all --tiny --size 64 --steps 8 --runs 1   # checks the code in ~1 min

  5. --adapter-costs: what a LoRA and an IP-Adapter add to a job, against the plain job on the same
     pipeline, runs interleaved (plain, LoRA, IP-Adapter, ...): the LoRA's activation time per job
     (apply before + exact restore after, the job's "applying LoRAs" + "restoring LoRA weights" stages)
     and its share of the job; the IP-Adapter's (plus, ViT-H/14) cost per denoising step relative to
     the plain job's step, and its image-embedding time (once per reference image and device).
     Real SD1.5 / ViT-H shapes with random weights (+ ~2.6 GB for the encoder); --tiny checks the code.

Always printed with the load average: on a shared machine timings mean little without it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def peak_rss_mb() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 1024.0 / 1024.0


def reset_peak_rss() -> bool:
    """Linux: reset this process's peak RSS (VmHWM), so the run's peak is measured without the build's."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float:
    """Peak RSS since the last reset_peak_rss (Linux), else the process's lifetime peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mb()


def build_components(dtype, device="cpu", seed: int = 0, tiny: bool = False):
    """Real SD1.5 shapes, random weights, deterministic for a seed (so subprocesses build identical models).
    tiny: the test suite's tiny models instead (to check the benchmark's code in seconds; no figures)."""
    import torch

    if tiny:
        from zrealism_core.testing.tiny_models import tiny_components

        c = tiny_components(seed)
        mods = dict(unet=c["unet"], depth=c["controlnets"][0], pose=c["controlnets"][1], vae=c["vae"],
                    text_encoder=c["text_encoder"])
        for m in mods.values():
            m.requires_grad_(False)
            if dtype != torch.float32 or str(device) != "cpu":  # built as fp32 on the CPU
                m.to(device=device, dtype=dtype)
        return mods, c["tokenizer"], c["scheduler"]
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from zrealism_core.testing import tiny_models as tm
    from zrealism_core.models.loaders import SD15_CONFIG_DIR, tokenizer_for

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**tm.SD15_UNET_CONFIG)
        depth = tm.reinit_zero_convs(ControlNetModel.from_unet(unet), seed + 1)
        pose = tm.reinit_zero_convs(ControlNetModel.from_unet(unet), seed + 2)
        vae = AutoencoderKL(**tm.SD15_VAE_CONFIG)
        text_cfg = {k: v for k, v in tm.SD15_TEXT_CONFIG.items() if k not in ("architectures", "model_type")}
        text = CLIPTextModel(CLIPTextConfig(**text_cfg))
    mods = dict(unet=unet, depth=depth, pose=pose, vae=vae, text_encoder=text)
    for m in mods.values():
        m.to(dtype=dtype).eval().requires_grad_(False)
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_pretrained(str(SD15_CONFIG_DIR), subfolder="scheduler")
    return mods, tokenizer_for(None), sched


def weights_bytes(mods) -> int:
    return sum(p.numel() * p.element_size() for m in mods.values() for p in m.parameters()) + sum(
        b.numel() * b.element_size() for m in mods.values() for b in m.buffers()
    )


def make_pipes(mods, tok, sched, device, dtype):
    """(ours: ZRealismPipeline, plain: diffusers pipeline) over the same module objects."""
    from diffusers import MultiControlNetModel, StableDiffusionControlNetImg2ImgPipeline

    from zrealism_core.engine import ZRealismPipeline
    from zrealism_core.runtime.guidance import skipping_multi_controlnet

    common = dict(vae=mods["vae"], text_encoder=mods["text_encoder"], tokenizer=tok, unet=mods["unet"],
                  scheduler=sched, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    sd_ours = StableDiffusionControlNetImg2ImgPipeline(controlnet=skipping_multi_controlnet([mods["depth"], mods["pose"]]), **common)
    sd_plain = StableDiffusionControlNetImg2ImgPipeline(controlnet=MultiControlNetModel([mods["depth"], mods["pose"]]), **common)
    for p in (sd_ours, sd_plain):
        p.set_progress_bar_config(disable=True)
    ours = ZRealismPipeline(sd_ours, device=device, dtype=dtype, fallback=False)
    return ours, sd_plain


def inputs(size: int):
    rs = np.random.RandomState(0)
    img = rs.rand(size, size, 3).astype(np.float32)
    depth = rs.rand(size, size, 3).astype(np.float32)
    pose = rs.rand(size, size, 3).astype(np.float32)
    return img, depth, pose


def run_ours(ours, args, size, prepare=None, control_end: float = 1.0):
    from zrealism_core.engine import transform

    img, depth, pose = inputs(size)
    t = time.perf_counter()
    r = transform(ours, img, depth_map=depth, pose_map=pose, prompt="a photo of a person", negative="drawing",
                  seed=1, steps=args.steps, denoise=args.denoise, cfg=7.0, scheduler=args.scheduler, prepare=prepare,
                  depth_end=control_end, pose_end=control_end)
    return time.perf_counter() - t, r


def run_plain(sd, args, size, device, control_end: float = 1.0):
    import torch

    from zrealism_core.imaging.images import to_pil
    from zrealism_core.models.schedulers import make_scheduler

    img, depth, pose = inputs(size)
    t = time.perf_counter()
    # what a diffusers user writes: PIL in, the same scheduler, scales, seed and output
    sd.scheduler = make_scheduler(args.scheduler, sd.scheduler.config)
    out = sd(prompt="a photo of a person", negative_prompt="drawing", image=to_pil(img),
             control_image=[to_pil(depth), to_pil(pose)], strength=args.denoise, num_inference_steps=args.steps,
             guidance_scale=7.0, controlnet_conditioning_scale=[0.7, 0.7], control_guidance_start=[0.0, 0.0],
             control_guidance_end=[control_end, control_end], height=size, width=size,
             generator=torch.Generator("cpu").manual_seed(1), output_type="np")
    return time.perf_counter() - t, out.images[0]


# ------------------------------------------------------------------ CPU

def cpu_speed(args) -> dict:
    import torch

    t0 = time.perf_counter()
    mods, tok, sched = build_components(torch.float32)
    build_s = time.perf_counter() - t0
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    size = args.size
    t_ours, t_plain, c_ours, c_plain = [], [], [], []
    run_ours(ours, args, size)  # warm-up (first-call allocations) for both: they share modules
    same = None
    for i in range(args.runs):
        # ABBA order (ours first on even runs, plain first on odd ones) so neither side always runs first
        def timed_ours():
            c = time.process_time()  # CPU seconds of this process: less disturbed by other users than wall time
            dt_, r_ = run_ours(ours, args, size)
            return dt_, time.process_time() - c, r_

        def timed_plain():
            c = time.process_time()
            dt_, img_ = run_plain(plain, args, size, "cpu")
            return dt_, time.process_time() - c, img_

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
        same = float(np.abs(r.image - img).max())
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
        run_ours(ours_bf, args, size)
        t_bf = []
        for i in range(args.runs):
            dt, _ = run_ours(ours_bf, args, size)
            t_bf.append(dt)
            print(f"  bf16 run {i + 1}: ours {dt:.2f} s (load {load_avg()})", flush=True)
        res["bf16_s"] = t_bf
        res["bf16_speedup"] = statistics.median(t_ours) / statistics.median(t_bf)
    return res


def cpu_rss_side(args) -> dict:
    """One side in a fresh process: build, run once, report peak RSS against the weights."""
    import torch

    import gc

    mods, tok, sched = build_components(torch.float32)
    build_peak = peak_rss_mb()
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    gc.collect()
    reset = reset_peak_rss()  # measure the job, not the random-weight build (which briefly holds temporaries)
    if args.side == "ours":
        dt, _ = run_ours(ours, args, args.size)
    else:
        dt, _ = run_plain(plain, args, args.size, "cpu")
    w = weights_bytes(mods) / 2**20
    peak = vm_hwm_mb()
    return dict(side=args.side, seconds=dt, peak_rss_mb=peak, build_peak_rss_mb=build_peak, weights_mb=w,
                peak_over_weights=peak / w, peak_is_run_only=reset)


def expected_net_calls(n_steps: int, start: float, end: float) -> int:
    """Steps a net acts in, by diffusers' rule: step i of the n run is outside the window when
    i / n < start or (i + 1) / n > end (one call per step: CFG's two halves are one batch)."""
    return sum(not (i / n_steps < start or (i + 1) / n_steps > end) for i in range(n_steps))


def control_end_check(args) -> dict:
    """ControlNet calls with a control window ending at args.control_end, ours against plain diffusers."""
    import torch

    from zrealism_core.runtime.fallback import expected_steps

    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    calls = {"depth": 0, "pose": 0}

    def counter(name):
        def hook(module, inputs_, output):
            calls[name] += 1
        return hook

    hooks = [mods[name].register_forward_hook(counter(name)) for name in calls]
    n = expected_steps(args.steps, args.denoise)
    want = expected_net_calls(n, 0.0, args.control_end)
    res: dict = dict(steps=n, control_end=args.control_end, expected_calls_per_net=want, tiny=args.tiny)
    try:
        run_ours(ours, args, args.size, control_end=args.control_end)  # warm-up
        for side, run in (("ours", lambda: run_ours(ours, args, args.size, control_end=args.control_end)),
                          ("plain", lambda: run_plain(plain, args, args.size, "cpu", control_end=args.control_end))):
            for name in calls:
                calls[name] = 0
            dt, _ = run()
            res[side] = dict(calls=dict(calls), seconds=dt)
            print(f"  {side}: ControlNet calls {calls} in {dt:.2f} s (load {load_avg()})", flush=True)
    finally:
        for h in hooks:
            h.remove()
    res["ours_skips_outside_window"] = all(v == want for v in res["ours"]["calls"].values())
    res["plain_runs_every_step"] = all(v == n for v in res["plain"]["calls"].values())
    res["ratio"] = res["ours"]["seconds"] / res["plain"]["seconds"]
    print(f"  {n} steps, control end {args.control_end}: expected {want} calls per net (ours), {n} (plain); "
          f"ours {'OK' if res['ours_skips_outside_window'] else 'WRONG'}, plain {'OK' if res['plain_runs_every_step'] else 'WRONG'}; "
          f"time ratio ours/plain {res['ratio']:.3f}", flush=True)
    return res


# ------------------------------------------------------------------ speed cases (issue 12)

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

    base = dict(steps=args.steps, denoise=args.denoise, cfg=7.0, scheduler=args.scheduler, depth_end=1.0, pose_end=1.0,
                pose="random", cfg_end=1.0, control_budget="full")
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
    import torch

    from zrealism_core.imaging.images import to_pil
    from zrealism_core.models.schedulers import make_scheduler

    img, depth, pose = inputs(size)
    if job["pose"] == "black":
        pose = np.zeros_like(pose)
    if side == "ours":
        from zrealism_core.engine import transform

        r = transform(pipe, img, depth_map=depth, pose_map=pose, prompt="a photo of a person", negative="drawing", seed=1,
                      steps=job["steps"], denoise=job["denoise"], cfg=job["cfg"], scheduler=job["scheduler"],
                      depth_end=job["depth_end"], pose_end=job["pose_end"], cfg_end=job["cfg_end"],
                      control_budget=job["control_budget"], control_reuse=job.get("control_reuse", 1),
                      unet_reuse=job.get("unet_reuse", 1))
        return r.image
    pipe.scheduler = make_scheduler(job["scheduler"], pipe.scheduler.config)
    out = pipe(prompt="a photo of a person", negative_prompt="drawing", image=to_pil(img),
               control_image=[to_pil(depth), to_pil(pose)], strength=job["denoise"], num_inference_steps=job["steps"],
               guidance_scale=job["cfg"], controlnet_conditioning_scale=[0.7, 0.7], control_guidance_start=[0.0, 0.0],
               control_guidance_end=[job["depth_end"], job["pose_end"]], height=size, width=size,
               generator=torch.Generator("cpu").manual_seed(1), output_type="np")
    return out.images[0]


def denoise_flops(counter) -> int:
    """FLOPs of the denoising loop (UNet + ControlNets) from a FlopCounterMode's per-module totals."""
    return sum(sum(ops.values()) for mod, ops in counter.get_flop_counts().items()
               if "." not in mod and ("UNet" in mod or "ControlNet" in mod))


def versions() -> str:
    import platform

    import diffusers
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, numpy {np.__version__}; "
            f"{cpu}, {os.cpu_count()} logical CPUs")


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
    print(f"\n| case | steps run (ours / plain) | FLOPs vs plain diffusers (goal) | wall vs plain diffusers (goal) | ours | plain |")
    print("|---|---|---|---|---|---|")
    for n in names:
        c = res["cases"][n]
        fg, wg = GOALS[n]
        print(f"| {n} | {c['steps_run']} / {c['plain_steps_run']} | {c['flop_ratio']:.3f} ({fg or '-'}) | {c['wall_ratio']:.3f} ({wg or '-'}) | "
              f"{statistics.median(c['ours_s']):.2f} s, {c['ours_gflop']:.0f} GFLOP | "
              f"{statistics.median(c['plain_s']):.2f} s, {c['plain_gflop']:.0f} GFLOP |")
    return res


# ------------------------------------------------------------------ step reuse levers (issue 20)

# name -> transform() settings on top of the job (steps, denoise, cfg, scheduler of the command line)
LEVER_CASES: dict = {
    "full, no encodings kept": dict(cold=True),  # engine/encode_cache cleared before the job: every stage runs
    "full (ours, defaults)": {},
    "control_reuse 2": dict(control_reuse=2),
    "unet_reuse 2": dict(unet_reuse=2),
    "unet_reuse 3": dict(unet_reuse=3),
    "control_reuse 2 + unet_reuse 2": dict(control_reuse=2, unet_reuse=2),
    "fast before issue 20 (cfg_end 0.5, prompt_branch, ends 0.6)": dict(cfg_end=0.5, control_budget="prompt_branch",
                                                                         depth_end=0.6, pose_end=0.6),
    "fast (the preset now: + unet_reuse 2)": dict(cfg_end=0.5, control_budget="prompt_branch", depth_end=0.6, pose_end=0.6,
                                                   unet_reuse=2),
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def lever_inputs(size: int):
    """The bundled sample character (so edges and colours mean something) and the benchmark's maps."""
    from zrealism_core.imaging.sample import sample_character

    _, depth, pose = inputs(size)
    return sample_character(size, background="flat"), depth, pose


def fidelity(src: np.ndarray, out: np.ndarray, depth: np.ndarray, pose: np.ndarray) -> dict:
    """The Fidelity report's edge_f (control) and colour ΔE (mean CIEDE2000 in the compared region)."""
    from zrealism_core.evaluation import evaluate

    rep = evaluate(src, out, depth_map=depth, pose_map=pose, annotator_dirs=[])
    return dict(edge_f=rep.control.get("edge_f"), delta_e=rep.diagnostics["color"]["delta_e_mean"],
                overall=rep.scores.get("overall"))


class StageClock:
    """Wall time per stage of one job: forward hooks on the text encoder, the UNet and the (multi-)ControlNet,
    and the VAE's encode / decode wrapped (an instance attribute, removed on close); the rest of the job is
    the transform's own stages (detection, maps, scheduler, pre/post-processing)."""

    def __init__(self, pipe):
        import torch  # noqa: F401

        self.t: dict = {k: 0.0 for k in ("text encode", "VAE encode", "ControlNets", "UNet", "VAE decode")}
        self._start: dict = {}
        sd = pipe.sd
        self.handles = []
        for name, mod in (("text encode", sd.text_encoder), ("UNet", sd.unet), ("ControlNets", sd.controlnet)):
            self.handles.append(mod.register_forward_pre_hook(self._pre(name)))
            self.handles.append(mod.register_forward_hook(self._post(name)))
        self.vae = sd.vae
        for name, attr in (("VAE encode", "encode"), ("VAE decode", "decode")):
            setattr(self.vae, attr, self._wrap(name, getattr(self.vae, attr)))

    def _pre(self, name):
        def hook(*_):
            self._start[name] = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(*_):
            self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - self._start.pop(name)
        return hook

    def _wrap(self, name, fn):
        def wrapped(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t
        return wrapped

    def close(self):
        for h in self.handles:
            h.remove()
        for attr in ("encode", "decode"):
            self.vae.__dict__.pop(attr, None)


def residual_changes(pipe, job) -> list:
    """Relative L2 change of the summed ControlNet residuals (conditional half) from each step to the next,
    in a full-compute job: what control_reuse gives away when it reuses a step's residuals on the next."""
    import torch

    seen = []

    def hook(module, args, out):
        down, mid = out
        if down is not None:
            b = args[0].shape[0]
            seen.append([t[b // 2:].float().clone() if b % 2 == 0 else t.float().clone() for t in list(down) + [mid]])

    h = pipe.sd.controlnet.register_forward_hook(hook)
    try:
        job()
    finally:
        h.remove()
    out = []
    for a, b in zip(seen, seen[1:]):
        num = sum(float(torch.sum((x - y) ** 2)) for x, y in zip(b, a) if x.shape == y.shape)
        den = sum(float(torch.sum(y ** 2)) for y in a)
        out.append((num / den) ** 0.5 if den else 0.0)
    return out


def levers(args) -> dict:
    """Stage profile of the full job, then each step-reuse lever against plain diffusers on the same job and
    seed: FLOPs (whole job and denoising loop), wall (median of `runs` rounds, alternating order), PSNR
    against plain diffusers' picture (a proxy with random weights) and the Fidelity report's edge_f and ΔE."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from zrealism_core.engine import transform
    from zrealism_core.imaging.images import to_pil
    from zrealism_core.models.schedulers import make_scheduler

    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    size = args.size
    img, depth, pose = lever_inputs(size)

    def run_case(kw):
        from zrealism_core.engine import encode_cache

        if kw.get("cold"):
            encode_cache.clear(ours)
        kw = {k: v for k, v in kw.items() if k != "cold"}
        return transform(ours, img, depth_map=depth, pose_map=pose, prompt="a photo of a person", negative="drawing",
                         seed=1, steps=args.steps, denoise=args.denoise, cfg=7.0, scheduler=args.scheduler, **kw)

    def run_plain_job():
        plain.scheduler = make_scheduler(args.scheduler, plain.scheduler.config)
        return plain(prompt="a photo of a person", negative_prompt="drawing", image=to_pil(img),
                     control_image=[to_pil(depth), to_pil(pose)], strength=args.denoise, num_inference_steps=args.steps,
                     guidance_scale=7.0, controlnet_conditioning_scale=[0.7, 0.7], height=size, width=size,
                     generator=torch.Generator("cpu").manual_seed(1), output_type="np").images[0]

    res: dict = dict(size=size, steps=args.steps, denoise=args.denoise, scheduler=args.scheduler, cases={})
    # 1. the stage profile of the full job (ours, defaults: the same arithmetic as plain diffusers), with
    # nothing kept from an earlier job and then as the next job on the same drawing and prompts; warm first
    run_case({})
    res["profile"] = {}
    for label, kw in (("nothing kept", dict(cold=True)), ("next job, same drawing and prompts", {})):
        clock = StageClock(ours)
        t = time.perf_counter()
        try:
            r = run_case(kw)
        finally:
            clock.close()
        total = time.perf_counter() - t
        prof = dict(clock.t)
        prof["detection"] = r.timings.get("depth map", 0.0) + r.timings.get("pose map", 0.0)
        prof["other (maps, scheduler, pre/post)"] = total - sum(prof.values())
        res["profile"][label] = dict(total_s=total, stages=prof, load=load_avg())
        print(f"  stage profile of the full job, {label} ({total:.2f} s, load {load_avg()}; detection 0: the maps are "
              f"given, see bench_maps for the detectors):", flush=True)
        for k, v in prof.items():
            print(f"    {k:34s} {v:7.2f} s  {v / total:6.1%}", flush=True)
    changes = residual_changes(ours, lambda: run_case({}))
    res["residual_change_step_to_step"] = changes
    print("  ControlNet residuals, relative L2 change from one step to the next (full job): "
          + ", ".join(f"{c:.3f}" for c in changes), flush=True)
    # 2. FLOPs and pictures (this pass is the warm-up too)
    with FlopCounterMode(display=False) as fc:
        ref = run_plain_job()
    plain_total, plain_loop = fc.get_total_flops(), denoise_flops(fc)
    res["plain"] = dict(gflop=plain_total / 1e9, loop_gflop=plain_loop / 1e9, fidelity=fidelity(img, ref, depth, pose), s=[])
    for name, kw in LEVER_CASES.items():
        with FlopCounterMode(display=False) as fc:
            r = run_case(kw)
        c = dict(settings=kw, flop_ratio=fc.get_total_flops() / plain_total, loop_flop_ratio=denoise_flops(fc) / plain_loop,
                 psnr=psnr(r.image, ref), fidelity=fidelity(img, r.image, depth, pose), reuse=r.reuse, s=[])
        res["cases"][name] = c
        print(f"  {name}: FLOPs {c['flop_ratio']:.3f} of plain (denoising loop {c['loop_flop_ratio']:.3f}), PSNR "
              f"{c['psnr']:.1f} dB, edge_f {c['fidelity']['edge_f']:.3f}, ΔE {c['fidelity']['delta_e']:.2f} "
              f"(load {load_avg()})", flush=True)
    # 3. wall: rounds alternating plain first / plain last
    names = list(LEVER_CASES)
    for i in range(args.runs):
        order = ["plain"] + names if i % 2 == 0 else names[::-1] + ["plain"]
        for name in order:
            t, c = time.perf_counter(), time.process_time()  # CPU seconds: less disturbed by other users than wall
            run_plain_job() if name == "plain" else run_case(LEVER_CASES[name])
            dt, dc = time.perf_counter() - t, time.process_time() - c
            row = res["plain"] if name == "plain" else res["cases"][name]
            row["s"].append(dt)
            row.setdefault("cpu_s", []).append(dc)
        print(f"  round {i + 1}: plain {res['plain']['s'][-1]:.2f} s, "
              + ", ".join(f"{n} {res['cases'][n]['s'][-1]:.2f} s" for n in names) + f" (load {load_avg()})", flush=True)
    med_plain = statistics.median(res["plain"]["s"])
    pf = res["plain"]["fidelity"]
    print(f"\nJob: {size}x{size}, {args.scheduler}, {args.steps} steps x denoise {args.denoise}, CFG 7, two ControlNets; "
          f"plain diffusers {med_plain:.2f} s (median of {args.runs}), edge_f {pf['edge_f']:.3f}, ΔE {pf['delta_e']:.2f}. "
          f"PSNR against plain diffusers' picture, same seed (random weights: a proxy).")
    print("| lever | FLOPs vs plain (denoising loop) | wall vs plain (CPU time) | PSNR | edge_f | colour ΔE | UNet full/shallow, nets run/shallow/reused |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        c = res["cases"][name]
        c["wall_ratio"] = statistics.median(c["s"]) / med_plain
        c["cpu_ratio"] = statistics.median(c["cpu_s"]) / statistics.median(res["plain"]["cpu_s"])
        ru = c["reuse"]
        calls = (f"{ru.get('unet_full', '-')}/{ru.get('unet_shallow', '-')}, {ru.get('control_run', '-')}/"
                 f"{ru.get('control_shallow', '-')}/{ru.get('control_reused', '-')}") if ru else "-"
        ps = "identical" if c["psnr"] == float("inf") else f"{c['psnr']:.1f} dB"
        print(f"| {name} | {c['flop_ratio']:.3f} ({c['loop_flop_ratio']:.3f}) | {c['wall_ratio']:.3f} ({c['cpu_ratio']:.3f}) | {ps} | "
              f"{c['fidelity']['edge_f']:.3f} | {c['fidelity']['delta_e']:.2f} | {calls} |")
    print(f"(load at the end {load_avg()})")
    return res


# ------------------------------------------------------------------ GPU

def gpu_bench(args) -> dict:
    import torch

    from zrealism_core.runtime.fallback import Attempt

    dev = torch.device("cuda")
    out: dict = dict(gpu=torch.cuda.get_device_name(0), size=args.gpu_size, steps=args.steps, denoise=args.denoise)
    t0 = time.perf_counter()
    mods, tok, sched = build_components(torch.float16, device="cuda")
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

    size = args.gpu_size
    timed("ours_gpu", lambda: run_ours(ours, args, size))
    timed("plain_gpu", lambda: run_plain(plain, args, size, "cuda"))
    out["ratio_gpu"] = out["ours_gpu"]["s"] / out["plain_gpu"]["s"]
    # model CPU offload: the weights live in RAM; each model visits the GPU while it runs
    offload = Attempt(dev, torch.float16, True, "benchmark: offload")
    timed("ours_offload", lambda: run_ours(ours, args, size, prepare=lambda a: ours.place(offload)))
    ours.restore(offload)
    if args.oom_check:
        out["oom_check"] = gpu_oom_check(ours, args)
    return out


def gpu_oom_check(ours, args) -> dict:
    """Cap this process's GPU memory below what the models need and check the fallback chain."""
    import logging

    import torch

    from zrealism_core.engine import transform

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    ours.fallback = True
    for m in ours.modules().values():
        m.to("cpu")
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    cap_gb = 1.0
    torch.cuda.set_per_process_memory_fraction(cap_gb * 2**30 / total)
    img, depth, pose = inputs(256)
    t = time.perf_counter()
    try:
        r = transform(ours, img, depth_map=depth, pose_map=pose, steps=4, denoise=0.5)
        res = dict(cap_gb=cap_gb, device=r.device, dtype=r.dtype, fallback=r.fallback, seconds=time.perf_counter() - t)
    except Exception as exc:  # report, do not hide: this is what the check is for
        res = dict(cap_gb=cap_gb, error=f"{type(exc).__name__}: {exc}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    print(f"  oom check: {res}", flush=True)
    return res


def adapter_costs(args) -> dict:
    """LoRA activation time per job and IP-Adapter cost per step, each relative to the plain job."""
    import tempfile

    import torch

    from zrealism_core import CLIP_VISION_H14_CONFIG
    from zrealism_core.engine import transform
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
            r = transform(pipe, img, depth_map=depth, pose_map=pose, prompt="a photo of a person", negative="drawing",
                          seed=1, steps=args.steps, denoise=args.denoise, cfg=7.0, scheduler=args.scheduler)
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


def ldm_roundtrip(args) -> dict:
    """Write the real-architecture random model as original-layout single files (fp16, like the
    usual downloads), load them with load_pipeline and the SHIPPED SD1.5 config folder (offline),
    check every weight came back, and run one still. Needs ~12 GB RAM (or a GPU machine)."""
    import tempfile

    import torch

    from zrealism_core.testing import tiny_models as tm
    from zrealism_core.engine import load_pipeline, transform

    dev = "cuda" if args.gpu else "cpu"
    mods, _, _ = build_components(torch.float16)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ckpt = tm._save(tm.ldm_checkpoint(mods["unet"], mods["vae"], mods["text_encoder"]), Path(tmp, "sd15-random.safetensors"))
        depth = tm._save(tm.controlnet_to_ldm(mods["depth"].state_dict(), mods["depth"].config), Path(tmp, "control_v11f1p_sd15_depth_fp16.safetensors"))
        pose = tm._save(tm.controlnet_to_ldm(mods["pose"].state_dict(), mods["pose"].config, prefix=""), Path(tmp, "control_v11p_sd15_openpose.safetensors"))
        out["write_s"] = time.perf_counter() - t
        out["sizes_mb"] = [round(p.stat().st_size / 2**20) for p in (ckpt, depth, pose)]
        t = time.perf_counter()
        pipe = load_pipeline(ckpt, depth, pose, device=dev, dtype="fp16" if args.gpu else "fp32", cache=False)
        out["load_s"] = time.perf_counter() - t
        mismatched = 0
        for name, ref in (("unet", mods["unet"]), ("vae", mods["vae"]), ("text_encoder", mods["text_encoder"])):
            got = getattr(pipe.sd, name).state_dict()
            mismatched += sum(not torch.equal(got[k].to(torch.float16).cpu(), v.cpu()) for k, v in ref.state_dict().items())
        for net, ref in zip(pipe.controlnets, (mods["depth"], mods["pose"])):
            got = net.state_dict()
            mismatched += sum(not torch.equal(got[k].to(torch.float16).cpu(), v.cpu()) for k, v in ref.state_dict().items())
        out["mismatched_tensors"] = mismatched
        img, d, p = inputs(args.gpu_size if args.gpu else args.size)
        t = time.perf_counter()
        r = transform(pipe, img, depth_map=d, pose_map=p, steps=args.steps, denoise=args.denoise)
        out["transform_s"] = time.perf_counter() - t
        out["result"] = dict(shape=list(r.image.shape), device=r.device, dtype=r.dtype, finite=bool(np.isfinite(r.image).all()))
    out["peak_rss_mb"] = peak_rss_mb()
    print(f"  ldm round trip: {out}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--denoise", type=float, default=0.5, help="img2img runs int(steps*denoise) UNet steps (default 3)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--scheduler", default="dpmpp_2m_karras")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false")
    ap.add_argument("--no-rss", dest="rss", action="store_false")
    ap.add_argument("--side", choices=["ours", "plain"], help=argparse.SUPPRESS)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--gpu-size", type=int, default=512)
    ap.add_argument("--oom-check", action="store_true")
    ap.add_argument("--ldm-roundtrip", action="store_true", help="write + load real-size original-layout files")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--control-end-check", action="store_true", help="count ControlNet calls with a control window")
    ap.add_argument("--control-end", type=float, default=0.8)
    ap.add_argument("--tiny", action="store_true", help="tiny test models: checks the code, gives no figures")
    ap.add_argument("--adapter-costs", action="store_true", help="LoRA activation per job and IP-Adapter cost per step")
    ap.add_argument("--lora-rank", type=int, default=32, help="rank of the benchmark's LoRA (--adapter-costs)")
    ap.add_argument("--levers", action="store_true",
                    help="issue 20: stage profile, then each step-reuse lever against plain diffusers (FLOPs, wall, PSNR, fidelity)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--cases", nargs="+", metavar="CASE",
                    help=f"speed cases against plain diffusers (issue 12): {', '.join(SPEED_CASES)}, or all")
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.side:
        print("RESULT " + json.dumps(cpu_rss_side(args)), flush=True)
        return 0
    print(f"bench_still: load {load_avg()}, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    print(f"  {versions()}", flush=True)
    if args.cases:
        print(f"Speed cases, {args.size}x{args.size}, {args.steps} steps x denoise {args.denoise}, CFG 7, {args.runs} timed rounds:", flush=True)
        res = speed_cases(args)
    elif args.levers:
        print(f"Step-reuse levers, {args.size}x{args.size}, {args.scheduler}, {args.steps} steps x denoise {args.denoise}, "
              f"CFG 7, {args.runs} timed rounds:", flush=True)
        res = levers(args)
    elif args.control_end_check:
        res = control_end_check(args)
        if not (res["ours_skips_outside_window"] and res["plain_runs_every_step"]):
            print(json.dumps(res, indent=1, default=str))
            return 1
    elif args.adapter_costs:
        res = adapter_costs(args)
    elif args.ldm_roundtrip:
        res = ldm_roundtrip(args)
    elif args.gpu:
        res = gpu_bench(args)
    else:
        print(f"CPU speed, {args.size}x{args.size}, {int(args.steps * args.denoise)} UNet steps (CFG), interleaved:", flush=True)
        res = cpu_speed(args)
        print(f"  median ratio ours/plain = {res['ratio']:.3f} wall, {res['cpu_ratio']:.3f} CPU time (goal <= 1.02); "
              f"max |diff| = {res['max_abs_diff']:.2e}")
        if "bf16_speedup" in res:
            print(f"  bf16 speed-up over fp32 = {res['bf16_speedup']:.2f}x (goal >= 2)")
        if args.rss:
            res["rss"] = {}
            for side in ("ours", "plain"):
                cmd = [sys.executable, "-m", "benchmarks.bench_still", "--side", side, "--size", str(args.size), "--steps", str(args.steps),
                       "--denoise", str(args.denoise), "--scheduler", args.scheduler]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if not line:
                    print(proc.stderr[-2000:])
                    raise SystemExit(f"RSS subprocess for {side} failed")
                r = json.loads(line[-1][7:])
                res["rss"][side] = r
                print(f"  peak RSS {side} during the job: {r['peak_rss_mb']:.0f} MB = {r['peak_over_weights']:.3f} x the "
                      f"{r['weights_mb']:.0f} MB of weights (building the random weights peaked at {r['build_peak_rss_mb']:.0f} MB; "
                      f"run {r['seconds']:.1f} s; load {load_avg()})", flush=True)
    res["load_end"] = load_avg()
    print(json.dumps(res, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
