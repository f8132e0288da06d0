"""What the still and clip benchmarks share: the real SD1.5 architecture with random weights (no download),
our engine and plain diffusers over the same module objects, one job run on either side, the figures'
helpers (load average, peak RSS, FLOPs of the denoising loop, PSNR, fidelity) and the command-line frame."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT, NEGATIVE = "a photo of a person", "drawing"


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


def build_components(dtype: Any, device: Any = "cpu", seed: int = 0, tiny: bool = False) -> Tuple[dict, Any, Any]:
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


def weights_bytes(mods: Dict[str, Any]) -> int:
    return sum(p.numel() * p.element_size() for m in mods.values() for p in m.parameters()) + sum(
        b.numel() * b.element_size() for m in mods.values() for b in m.buffers()
    )


def make_pipes(mods: Dict[str, Any], tok: Any, sched: Any, device: Any, dtype: Any) -> Tuple[Any, Any]:
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


def inputs(size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(drawing, depth map, pose map): random pictures, the same for every run."""
    rs = np.random.RandomState(0)
    img = rs.rand(size, size, 3).astype(np.float32)
    depth = rs.rand(size, size, 3).astype(np.float32)
    pose = rs.rand(size, size, 3).astype(np.float32)
    return img, depth, pose


def base_job(args: argparse.Namespace, control_end: float = 1.0, **over: Any) -> dict:
    """The job of the command line (steps, denoise, scheduler), CFG 7, both nets on to `control_end`."""
    job = dict(steps=args.steps, denoise=args.denoise, cfg=7.0, scheduler=args.scheduler, depth_end=control_end,
               pose_end=control_end, cfg_end=1.0, control_budget="full")
    job.update(over)
    return job


def run_ours(pipe: Any, job: dict, images: Sequence[np.ndarray], prepare: Any = None) -> Any:
    """One job on our engine (a ZRealismPipeline): the TransformResult."""
    from zrealism_core.engine import transform

    img, depth, pose = images
    return transform(pipe, img, depth_map=depth, pose_map=pose, prompt=PROMPT, negative=NEGATIVE, seed=1,
                     steps=job["steps"], denoise=job["denoise"], cfg=job["cfg"], scheduler=job["scheduler"],
                     depth_end=job["depth_end"], pose_end=job["pose_end"], cfg_end=job["cfg_end"],
                     control_budget=job["control_budget"], control_reuse=job.get("control_reuse", 1),
                     unet_reuse=job.get("unet_reuse", 1), decode_channels_last=job.get("decode_channels_last", False),
                     prepare=prepare)


def run_plain(sd: Any, job: dict, images: Sequence[np.ndarray]) -> np.ndarray:
    """The same job as a diffusers user writes it (PIL in, the same scheduler, scales, seed): the picture.
    Plain diffusers has no cfg_end / control_budget / step reuse: it runs every net on both branches."""
    import torch

    from zrealism_core.imaging.images import to_pil
    from zrealism_core.models.schedulers import make_scheduler

    img, depth, pose = images
    size = img.shape[0]
    sd.scheduler = make_scheduler(job["scheduler"], sd.scheduler.config)
    out = sd(prompt=PROMPT, negative_prompt=NEGATIVE, image=to_pil(img), control_image=[to_pil(depth), to_pil(pose)],
             strength=job["denoise"], num_inference_steps=job["steps"], guidance_scale=job["cfg"],
             controlnet_conditioning_scale=[0.7, 0.7], control_guidance_start=[0.0, 0.0],
             control_guidance_end=[job["depth_end"], job["pose_end"]], height=size, width=img.shape[1],
             generator=torch.Generator("cpu").manual_seed(1), output_type="np")
    return out.images[0]


def denoise_flops(counter: Any) -> int:
    """FLOPs of the denoising loop (UNet + ControlNets) from a FlopCounterMode's per-module totals."""
    return sum(sum(ops.values()) for mod, ops in counter.get_flop_counts().items()
               if "." not in mod and ("UNet" in mod or "ControlNet" in mod))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def fidelity(src: np.ndarray, out: np.ndarray, depth: np.ndarray, pose: np.ndarray) -> dict:
    """The Fidelity report's edge_f (control) and colour ΔE (mean CIEDE2000 in the compared region)."""
    from zrealism_core.evaluation import evaluate

    rep = evaluate(src, out, depth_map=depth, pose_map=pose, annotator_dirs=[])
    return dict(edge_f=rep.control.get("edge_f"), delta_e=rep.diagnostics["color"]["delta_e_mean"],
                overall=rep.scores.get("overall"))


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


def job_parser(description: str) -> argparse.ArgumentParser:
    """The options every still benchmark takes: the job, the rounds, threads, tiny models, a JSON copy."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--denoise", type=float, default=0.5, help="img2img runs int(steps*denoise) UNet steps (default 3)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--scheduler", default="dpmpp_2m_karras")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--tiny", action="store_true", help="tiny test models: checks the code, gives no figures")
    ap.add_argument("--json", help="also write the results here")
    return ap


def alternating_summary(times: Dict[str, List[float]], outs: Dict[str, Any], base: str,
                        distance: Callable[[Any, Any], float], label: str) -> Dict[str, dict]:
    """Median wall time of each timed variant, its ratio to `base`, and `distance(out, base's out)` as
    `label`; printed a line per variant and returned by name."""
    import statistics

    ref = statistics.median(times[base])
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        d = float(distance(outs[name], outs[base]))
        rows[name] = {"median_s": med, "ratio": med / ref, label: d, "times": ts}
        print(f"  {name:13s} {med:7.2f} s  ratio {med / ref:.3f}  {label} {d:.3g}", flush=True)
    return rows


def start(name: str, args: argparse.Namespace) -> None:
    """Set the threads and print the header: always the load average, since on a shared machine timings
    mean little without it."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{name}: load {load_avg()}, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    print(f"  {versions()}", flush=True)


def finish(res: dict, args: argparse.Namespace) -> int:
    """Print the results as JSON (and write them to --json) with the load at the end."""
    res["load_end"] = load_avg()
    text = json.dumps(res, indent=1, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0
