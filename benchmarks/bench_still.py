"""The still's step-reuse levers (issue 20) against plain diffusers, on the real SD1.5 architecture with
random weights (no download; CPU fp32, ~8 GB RAM - run it under `flock /tmp/zr_heavy.lock`).

First the stage profile of the full job (ours at its defaults = plain diffusers' arithmetic), with nothing kept
from an earlier job and as the next job on the same drawing and prompts, and how much the ControlNet residuals
change from one step to the next. Then each lever against plain diffusers
(StableDiffusionControlNetImg2ImgPipeline + MultiControlNetModel on the SAME module objects) on the same job
and seed: FLOPs (whole job and denoising loop, torch FlopCounterMode), wall and CPU time (median of --runs
rounds in alternating order), PSNR against plain diffusers' picture (a proxy with random weights) and the
Fidelity report's edge_f and colour ΔE against the drawing (the bundled sample character).

    flock /tmp/zr_heavy.lock python -m benchmarks.bench_still --size 256 --steps 8 --denoise 0.5 --scheduler euler --runs 3
    python -m benchmarks.bench_still --tiny --size 64 --runs 1   # checks the code, gives no figures

The other still figures: bench_cpu_speed (ours vs plain, wall/CPU time, peak RSS, bf16), bench_speed_cases
(each speed case's FLOPs and wall), bench_adapter_costs (LoRA / IP-Adapter), bench_gpu (GPU time and VRAM).
Always printed with the load average: on a shared machine timings mean little without it.
"""
from __future__ import annotations

import contextlib
import statistics
import sys
import time


from zrealism_core.runtime.instance_patch import method_replaced

from ._common import (base_job, build_components, denoise_flops, fidelity, finish, inputs, job_parser, load_avg,
                      make_pipes, psnr, run_ours, run_plain, start)

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
    "decode_channels_last": dict(decode_channels_last=True),
}


def preset_case(preset: str) -> dict:
    """What a preset changes on the benchmark's full job, as the sampler node resolves it (settings.apply_preset)."""
    from zrealism_core.settings import apply_preset

    full = dict(depth_end=1.0, pose_end=1.0, cfg_end=1.0, control_budget="full", control_reuse=1, unet_reuse=1)
    return {k: v for k, v in apply_preset(full, preset).items() if full.get(k) != v}


LEVER_CASES.update({"balanced (the default preset)": preset_case("balanced"), "fast (the preset)": preset_case("fast")})


def lever_inputs(size: int):
    """The bundled sample character (so edges and colours mean something) and the benchmark's maps."""
    from zrealism_core.imaging.sample import sample_character

    _, depth, pose = inputs(size)
    return sample_character(size, background="flat"), depth, pose


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
        self.wrappers = contextlib.ExitStack()  # the one way to wrap a method and take it off (runtime.instance_patch)
        for name, attr in (("VAE encode", "encode"), ("VAE decode", "decode")):
            self.wrappers.enter_context(method_replaced(sd.vae, attr, self._wrap(name, getattr(sd.vae, attr))))

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
        self.wrappers.close()


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

    mods, tok, sched = build_components(torch.float32, tiny=args.tiny)
    ours, plain = make_pipes(mods, tok, sched, torch.device("cpu"), torch.float32)
    size = args.size
    images = lever_inputs(size)
    img, depth, pose = images

    def run_case(kw):
        from zrealism_core.engine import encode_cache

        if kw.get("cold"):
            encode_cache.clear(ours)
        return run_ours(ours, base_job(args, **{k: v for k, v in kw.items() if k != "cold"}), images)

    def run_plain_job():
        return run_plain(plain, base_job(args), images)

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


def main(argv=None) -> int:
    ap = job_parser(__doc__.splitlines()[0])
    args = ap.parse_args(argv)
    start("bench_still", args)
    print(f"Step-reuse levers, {args.size}x{args.size}, {args.scheduler}, {args.steps} steps x denoise {args.denoise}, "
          f"CFG 7, {args.runs} timed rounds:", flush=True)
    return finish(levers(args), args)


if __name__ == "__main__":
    sys.exit(main())
