"""transform(): one still, from a prepared drawing to a photo, guided by depth + OpenPose (+ detail) ControlNets.

    result = transform(pipe, image, prompt="photo of ...", denoise=0.6, callback=lambda s, t: ...)
    result.image / result.depth_map / result.pose_map   # H,W,3 float32 in 0..1
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..adapters import views
from ..control.detail import detail_control
from ..control.empty import switch_off_empty, window
from ..control.maps import prepare_maps
from ..models.detectors import using_store
from ..errors import InputError
from ..imaging.color_lock import color_lock as _color_lock
from ..imaging.images import resize_rgb, to_mask, to_pil, to_rgb
from ..runtime import device as devices
from ..runtime import fallback as runtime
from ..runtime import guidance
from ..runtime import step_reuse
from ..runtime.decode_layout import channels_last_decode
from ..runtime.placement import estimate_memory, run_detection
from ..models.schedulers import DEFAULT_SCHEDULER, make_scheduler
from ..text.encode import pipeline_prompt_embeds
from . import encode_cache
from .pipeline import CONTROLNET_ROLES, ZRealismPipeline

log = logging.getLogger("zrealism")


@dataclass
class TransformResult:
    """Output of transform(): the photo and the two maps that guided it (H,W,3 float32 0..1)."""

    image: np.ndarray
    depth_map: np.ndarray
    pose_map: np.ndarray
    steps: int = 0                     # denoising steps executed
    seed: int = 0
    device: str = ""
    dtype: str = ""
    fallback: Optional[str] = None     # reason, when the job ran on a fallback attempt
    timings: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # what was switched off or changed, and why (runtime.note)
    detail_map: Optional[np.ndarray] = None  # the detail ControlNet's hint, when that net ran
    reuse: Dict[str, Any] = field(default_factory=dict)  # control_reuse / unet_reuse: what ran, residual change


def round_to_8(h: int, w: int) -> Tuple[int, int]:
    """Sides rounded to the nearest multiple of 8 (at least 8): SD's VAE/UNet need it."""
    return max(8, int(h / 8.0 + 0.5) * 8), max(8, int(w / 8.0 + 0.5) * 8)  # half rounds up


def _resize_mask(m: np.ndarray, h: int, w: int) -> np.ndarray:
    if m.shape == (h, w):
        return m
    from PIL import Image

    img = Image.fromarray(np.clip(m, 0, 1).astype(np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def _schedule_detail(schedule: guidance.GuidanceSchedule, cfg: float, n_steps: int) -> str:
    """What a cfg_end / control_budget job does, for the log ("" when both are at their defaults)."""
    parts = []
    if float(schedule.cfg_end) < 1.0 and float(cfg) > 1.0:
        parts.append(f"guidance on {guidance.guided_steps(schedule.cfg_end, n_steps)} of {n_steps} steps (cfg_end {schedule.cfg_end:g})")
    if schedule.control_budget != "full":
        parts.append(f"ControlNets on the prompt branch only ({schedule.control_budget})")
    return "; " + "; ".join(parts) if parts else ""


def transform(
    pipe: ZRealismPipeline,
    image: Any,
    *,
    mask: Any = None,
    depth_map: Any = None,
    pose_map: Any = None,
    prompt: str = "",
    negative: str = "",
    seed: int = 0,
    steps: int = 20,
    cfg: float = 7.0,
    denoise: float = 0.6,
    depth_scale: float = 0.7,
    pose_scale: float = 0.7,
    callback: Optional[Callable[[int, int], None]] = None,
    depth_start: float = 0.0,
    depth_end: float = 1.0,
    pose_start: float = 0.0,
    pose_end: float = 1.0,
    scheduler: str = DEFAULT_SCHEDULER,
    color_lock: float = 0.0,
    depth_method: str = "auto",
    annotator_dirs: Optional[Sequence[Any]] = None,
    detect_resolution: int = 512,
    cancel: Any = None,
    fallback: Optional[bool] = None,
    prepare: Optional[Callable[[runtime.Attempt], None]] = None,
    restore: Optional[Callable[[runtime.Attempt], None]] = None,
    preview: Optional[Callable[[int, int, Any], None]] = None,
    cfg_end: float = guidance.DEFAULT_CFG_END,
    control_budget: str = guidance.DEFAULT_CONTROL_BUDGET,
    detail_scale: float = 0.0,
    detail_start: float = 0.0,
    detail_end: float = 1.0,
    detail_hint: str = "auto",
    detail_map: Any = None,
    chain: Optional[runtime.FallbackChain] = None,
    placement: Any = None,
    control_reuse: int = step_reuse.DEFAULT_CONTROL_REUSE,
    unet_reuse: int = step_reuse.DEFAULT_UNET_REUSE,
    decode_channels_last: bool = False,
) -> TransformResult:
    """Turn a prepared drawing into a photo while keeping its geometry (depth) and pose (OpenPose).

    image: PIL or numpy H,W,3 (uint8 or float 0..1; alpha is composited on white). The result has the
    input's size with sides rounded to multiples of 8. mask: optional H,W (1 = character), used by the
    colour lock. depth_map / pose_map: supply maps (any size) to skip detection; otherwise they are
    computed with zrealism_core.control.maps from the annotator folders.
    steps/denoise: img2img runs int(steps * denoise) steps - `callback(step, total)` is called once per
    executed step with that total. depth_/pose_start/end: the fraction of the schedule each net acts
    in. scheduler: see schedulers.SCHEDULER_NAMES. color_lock: 0..1 strength of the LAB colour
    transfer toward the source inside the mask. cancel: threading.Event or callable -> True to stop
    (CancelledError within one step). fallback: override the pipeline's OOM fallback switch.
    chain: the batch's OOM chain (pipe.chain(); once one image fell back the rest of the batch stays
    there); default: a chain of this job alone. placement: where the models go (runtime.placement;
    the ComfyUI node passes one that goes through ComfyUI's memory manager). prepare/restore: the
    older form of placement (callables taking the attempt). preview(step, total, latents): the latents
    tensor after each step, e.g. for ComfyUI's previewer (runtime.make_step_callback).
    cfg_end: fraction of the executed steps that run classifier-free guidance; after it the UNet and
    ControlNets run at batch 1 (1.0 = every step, as before). control_budget: "full" or
    "prompt_branch" (ControlNets on the conditional half only, residuals reused): guidance.py.
    A map with nothing to say (a black pose map, a flat depth map) switches its net off, with a
    note in the log and in the result's notes (control/empty.py).
    detail_scale / detail_start / detail_end / detail_hint / detail_map: the optional detail ControlNet
    (load_pipeline(detail_controlnet=...)): 0 = off (not run, not moved to the device); the hint is
    "auto" (from the net's file name), "tile", "canny" or "lineart", or your own detail_map (control/detail.py).
    control_reuse N (1 = off): inside their window the ControlNets run every N-th step and their residuals
    serve the steps between. unet_reuse N (1 = off): DeepCache, the full UNet every N-th step, only its
    shallow blocks (on the cached deep feature, with the ControlNets' shallow residuals) in between
    (runtime/step_reuse.py). result.reuse says what ran and how much the residuals changed.
    decode_channels_last: the VAE decode in channels-last layout (faster on a CPU; not bit-identical, ~1e-5;
    runtime/decode_layout.py). The balanced and fast presets set it; quality leaves it off.
    """
    import torch

    # 1. Check the arguments (a clear InputError before any work)
    if not isinstance(pipe, ZRealismPipeline) or pipe.sd is None:
        raise InputError("pipe must be a loaded pipeline from load_pipeline() (it may have been unloaded).")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be a whole number of 1 or more; got {steps!r}.")
    if not isinstance(denoise, (int, float)) or not 0.0 < denoise <= 1.0:
        raise InputError(f"denoise must be above 0 and at most 1; got {denoise!r}.")
    n_steps = runtime.expected_steps(int(steps), float(denoise))
    if n_steps < 1:
        raise InputError(
            f"denoise {denoise} with {steps} steps runs no step at all (img2img runs int(steps x denoise)); "
            "raise steps or denoise."
        )
    if not isinstance(cfg, (int, float)) or not np.isfinite(cfg) or cfg < 0:
        raise InputError(f"cfg must be a number of 0 or more; got {cfg!r}.")
    if not isinstance(color_lock, (int, float)) or not 0.0 <= color_lock <= 1.0:
        raise InputError(f"color lock strength must be between 0 and 1; got {color_lock!r}.")
    guidance.check(cfg_end, control_budget)
    step_reuse.check(control_reuse, unet_reuse)
    reuse_report: Dict[str, Any] = {}
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF

    # 2. Which nets are off by their window (control/empty.py: the one rule, said in the notes)
    timings: Dict[str, float] = {}
    notes: List[str] = []  # runtime.note(notes, ...) for everything switched off or changed on the user's behalf
    d_scale, d_start, d_end = window("depth", depth_scale, depth_start, depth_end, notes)
    p_scale, p_start, p_end = window("pose", pose_scale, pose_start, pose_end, notes)
    # 3. The image (and mask) at multiples of 8
    rgb = to_rgb(image, name="image")
    h0, w0 = rgb.shape[:2]
    h, w = round_to_8(h0, w0)
    rgb8 = resize_rgb(rgb, h, w)
    mask8 = _resize_mask(to_mask(mask, (h0, w0)), h, w) if mask is not None else None
    # 4. The control maps: detected inside the OOM chain (detectors run where the job runs), or the given ones resized
    dirs = annotator_dirs if annotator_dirs is not None else pipe.annotator_dirs
    maps: Dict[str, np.ndarray] = {}

    def detect(attempt: runtime.Attempt) -> None:
        """The control maps, inside the OOM chain: detectors run where the attempt runs."""
        with using_store(pipe.extras.get("detectors")):  # inside ComfyUI: the pipeline's own detectors
            maps["maps"] = prepare_maps(
                rgb8, depth=depth_map, pose=pose_map, method=depth_method, annotator_dirs=dirs, resolution=detect_resolution,
                device="cpu" if attempt.device.type == "cpu" else str(attempt.device), timings=timings, cancel=cancel, mask=mask8,
            )

    own_chain = chain is None
    if own_chain:  # one job: its own chain (a node running a batch passes one chain for the batch)
        if prepare is not None:  # the older form of a placement: two callables
            placement = runtime.CallbackPlacement(prepare, restore or pipe.restore)
        chain = pipe.chain(placement, fallback)
    if depth_map is None or pose_map is None:
        run_detection(chain, pipe, detect, detect_resolution, timings)  # an error closes the chain
    else:
        detect(chain.attempt)  # given maps: only resized
    depth8, pose8 = maps["maps"]

    # 5. A map that says nothing turns its net off; the optional detail net joins as a third ControlNet
    init_pil, depth_pil, pose_pil = to_pil(rgb8), to_pil(depth8), to_pil(pose8)
    d_scale = switch_off_empty("depth", depth8, d_scale, detected=depth_map is None, notes=notes)
    p_scale = switch_off_empty("pose", pose8, p_scale, detected=pose_map is None, notes=notes)
    detail = detail_control(pipe, rgb8, scale=detail_scale, start=detail_start, end=detail_end, hint=detail_hint,
                            given=detail_map, notes=notes, timings=timings)
    control_images, control_scales = [depth_pil, pose_pil], [d_scale, p_scale]
    control_starts, control_ends = [d_start, p_start], [d_end, p_end]
    detail.extend(control_images, control_scales, control_starts, control_ends, off=depth_pil)
    if detail.active:
        control_images[2] = to_pil(detail.image)

    # 6. The denoising job on one attempt: guidance schedule, prompt embeddings, img2img with the ControlNets
    def job(attempt: runtime.Attempt) -> Tuple[np.ndarray, int, runtime.Attempt]:
        reuse = step_reuse.StepReuse(int(control_reuse), int(unet_reuse)) if control_reuse > 1 or unet_reuse > 1 else None
        schedule = guidance.GuidanceSchedule(float(cfg_end), control_budget, reuse=reuse)  # fresh per attempt
        step_cb = runtime.make_step_callback(
            callback, cancel=cancel, preview=preview, on_step=schedule.on_step if schedule.needed else None)
        scale = schedule.guidance_scale(float(cfg), n_steps) if schedule.needed else float(cfg)
        # CPU generator: the same seed gives the same noise on every device (and on the fallback)
        gen = torch.Generator("cpu").manual_seed(seed)
        detail = f"{n_steps} steps, {w}x{h}, {attempt}" + _schedule_detail(schedule, cfg, n_steps)
        # the view's LoRAs / IP-Adapter are active only inside this block (after placement; the
        # text encoder's LoRA too, so prompts must be encoded in here); weights restored on exit
        with views.active(pipe, timings=timings, cfg=scale) as adapter_kwargs:
            with runtime.stage("encoding the prompts", timings):
                # weighting, embeddings, long prompts and clip_skip (text.encode); diffusers gets the embeddings;
                # the same prompts as a recent job: its embeddings (encode_cache, exact)
                loras = tuple((lf, s) for lf, s in getattr(pipe, "loras", ()) if float(s) != 0.0)
                pos_embeds, neg_embeds = encode_cache.prompt_embeds(
                    pipe, pipe.sd, loras, lambda made: pipeline_prompt_embeds(
                        pipe.sd, prompt or "", negative or "", cfg=scale, options=pipe.text, notes=made),
                    prompt or "", negative or "", scale, notes)
            with runtime.stage("synthesizing", timings, detail), guidance.scheduled(schedule, pipe.sd.controlnet, pipe.sd.unet), \
                    encode_cache.vae_encodings(pipe, pipe.sd.vae), channels_last_decode(pipe.sd.vae, bool(decode_channels_last)), \
                    runtime.timed_method(pipe.sd.vae, "decode", "decoding", timings):  # a part of synthesizing, timed apart
                out = pipe.sd(
                    **adapter_kwargs,
                    prompt_embeds=pos_embeds,
                    negative_prompt_embeds=neg_embeds,
                    image=init_pil,
                    control_image=control_images,
                    strength=float(denoise),
                    num_inference_steps=int(steps),
                    guidance_scale=scale,
                    controlnet_conditioning_scale=control_scales,
                    control_guidance_start=control_starts,
                    control_guidance_end=control_ends,
                    height=h,
                    width=w,
                    generator=gen,
                    output_type="np",
                    callback_on_step_end=step_cb,
                    callback_on_step_end_tensor_inputs=schedule.tensor_inputs(pipe.sd),
                )
        if reuse is not None:
            reuse_report.clear()
            reuse_report.update(control_reuse=reuse.control_reuse, unet_reuse=reuse.unet_reuse, residual_change=list(reuse.changes),
                                **reuse.stats)
        return np.asarray(out.images[0], dtype=np.float32), step_cb.steps_done, attempt

    # 7. Run it in the OOM chain, the nets that are off left where they are
    with pipe.lock:
        pipe.sd.scheduler = make_scheduler(scheduler, pipe.base_scheduler_config)
        nets_off = [name for name, scale in zip(CONTROLNET_ROLES, control_scales) if scale == 0]  # not moved to the device
        memory = estimate_memory(h, w, dtype=pipe.home_dtype, cfg=float(cfg) > 1.0, controlnets=len(control_scales) - len(nets_off))
        try:
            result, done, used = chain.run(job, memory_required=memory, timings=timings, skip=nets_off)
            fell_back = chain.fell_back
        finally:
            if own_chain:
                chain.close()

    # 8. Colour lock and the result
    if color_lock > 0:
        with runtime.stage("colour lock", timings):
            result = _color_lock(result, rgb8, mask8, strength=float(color_lock))
    result = np.ascontiguousarray(np.clip(result, 0.0, 1.0).astype(np.float32))
    log.info("zrealism: transform %dx%d, %d steps on %s%s", w, h, done, used, f" (fallback: {fell_back})" if fell_back else "")
    return TransformResult(
        image=result, depth_map=depth8.astype(np.float32), pose_map=pose8.astype(np.float32), steps=done, seed=seed,
        device=str(used.device), dtype=devices.dtype_name(used.dtype), fallback=fell_back, timings=timings,
        notes=notes, detail_map=detail.image, reuse=reuse_report,
    )
