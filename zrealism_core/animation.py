"""Animate a generated still into a short clip that keeps its identity, colours and pose.

How (AnimateDiff, diffusers):
- The video pipeline (AnimateDiffVideoToVideoControlNetPipeline, assembled in models/motion_pipeline.py) is built from the already-loaded
  still pipeline: the VAE, text encoder, tokenizer and [depth, pose] ControlNets are the same
  objects, and the motion UNet is assembled on the meta device and then *assigned* the still
  UNet's Parameter objects (`load_state_dict(assign=True)`), so there is no second copy of the
  2D weights (from_pipe / from_unet2d would copy them: +3.4 GB for SD1.5 in fp32). The motion
  modules are likewise the adapter's own tensors. Consequence: anything that changes the 2D
  weights in place (fusing a LoRA) changes both pipelines; moving one pipeline moves both.
  The motion pipeline is cached per still pipeline (the last adapter used) and rebuilt when the
  adapter or a module changes. Motion LoRAs are loaded for one call and unloaded afterwards.
- Video-to-video on the still repeated `frames` times at `strength` (the still is VAE-encoded
  once, posterior mean), with the still's depth and pose maps as ControlNet conditioning on every frame, and a
  scheduler of its own with AnimateDiff's training settings (linear betas, no clip, linspace
  spacing, steps_offset 1).
- Clips longer than the adapter's window (motion_max_seq_length, 32 for real v2/v3 adapters,
  24 for v1) use FreeNoise sliding context windows.
- The VAE decodes `decode_chunk_size` frames at a time to bound memory.
- SparseCtrl (optional, RGB): the still becomes the keyframe at frame 0 (and also at the last
  frame when looping). diffusers has no pipeline that combines SparseCtrl with ControlNets and
  video-to-video, so this mode runs AnimateDiffSparseControlNetPipeline from the noised still
  (same strength semantics, DDIM) and does not use the depth/pose maps; clips are limited to the
  motion model's window (no FreeNoise in that pipeline).
- Loop: "off"; "crossfade" generates extra tail frames and cross-fades them into the head, so the
  last frame flows into the first (same frame count); "pingpong" appends the clip reversed
  (2*frames-2 frames).
- Colour lock: every frame's LAB mean/std is pulled toward the still (color_lock.color_lock).
- Device policy, CUDA OOM -> model offload -> CPU fallback, progress callback and Cancel are the
  still sampler's: runtime.run_with_fallback / make_step_callback with the pipeline's own
  attempts(), place() and restore() (or ComfyUI's placement passed as `prepare`); only the motion
  modules (and SparseCtrl) are placed here on top, and on an offload attempt the motion pipeline
  gets diffusers' offload hooks itself. The pipeline's lock serialises still and video jobs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from .errors import InputError
from .imaging.images import resize_rgb, to_pil, to_rgb
from .models.motion_pipeline import (  # noqa: F401  (build_motion_unet, motion_pipeline, shares_unet_weights, share_motion_weights: public here too)
    ANIMATEDIFF_SCHEDULER_OVERRIDES, build_motion_unet, motion_pipeline, motion_scheduler, param_device_dtype, set_free_noise,
    run_sparsectrl, share_motion_weights, shares_unet_weights, still_pipeline,
)
from .models.motion import MotionLora, MotionModel, as_motion_model, load_motion_lora, require_peft
from .control.empty import switch_off_empty, window
from .runtime.guidance import DEFAULT_CFG_END, DEFAULT_CONTROL_BUDGET, GuidanceSchedule, scheduled
from .runtime.guidance import check as check_guidance
from .runtime.placement import estimate_memory, run_detection
from .runtime.fallback import Attempt, cancel_between_calls, check_cancel, expected_steps, make_step_callback, note, run_with_fallback, stage
from .text.encode import embeds_kwargs, fixed_prompt_encoding, pipeline_prompt_embeds

log = logging.getLogger("zrealism")
T = TypeVar("T")

LOOP_MODES = ("off", "crossfade", "pingpong")
MAX_FRAMES = 256


class Clip(list):
    """The frames (list of H,W,3 float32 in 0..1) plus `.fps`, `.seed`, `.timings` and `.notes`
    (what was switched off or changed, and why: runtime.note)."""

    fps: float = 8.0
    seed: int = 0
    timings: Dict[str, float]
    notes: List[str]


# ------------------------------------------------------------------ inputs

def _check_args(frames: int, fps: float, strength: float, steps: int, cfg: float, loop: str) -> None:
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not 1 <= int(frames) <= MAX_FRAMES:
        raise InputError(f"frames must be a whole number from 1 to {MAX_FRAMES}; got {frames!r}.")
    if not 0 < float(fps) <= 240:
        raise InputError(f"fps must be above 0 and at most 240; got {fps!r}.")
    if not 0.0 < float(strength) <= 1.0:
        raise InputError(f"strength must be above 0 and at most 1; got {strength!r}.")
    if int(steps) < 1:
        raise InputError(f"steps must be at least 1; got {steps!r}.")
    if int(int(steps) * float(strength)) < 1:
        raise InputError(
            f"steps x strength = {steps} x {strength} runs no denoising step (video-to-video runs int(steps*strength)); "
            "raise steps or strength."
        )
    if not 0.0 <= float(cfg) <= 30.0:
        raise InputError(f"cfg must be between 0 and 30; got {cfg!r}.")
    if loop not in LOOP_MODES:
        raise InputError(f"loop must be one of {', '.join(LOOP_MODES)}; got {loop!r}.")


def _loras(motion: MotionModel, motion_lora: Any, strength: float) -> List[MotionLora]:
    items: List[MotionLora] = list(motion.loras)
    extra = motion_lora if isinstance(motion_lora, (list, tuple)) else ([motion_lora] if motion_lora is not None else [])
    for item in extra:
        items.append(item if isinstance(item, MotionLora) else load_motion_lora(item, strength))
    return items


# ------------------------------------------------------------------ post-processing

def crossfade_tail(frames: Sequence[np.ndarray], n: int) -> List[np.ndarray]:
    """Seamless loop from n + k generated frames: the k extra tail frames (which continue frame n-1)
    are cross-faded into the first k, so the played clip wraps from frame n-1 to frame 0 smoothly."""
    k = len(frames) - n
    out = [np.asarray(f, dtype=np.float32) for f in frames[:n]]
    for j in range(k):
        w_head = (j + 1) / (k + 1)  # 0 -> mostly the tail (continuation), k-1 -> mostly the head
        out[j] = (w_head * out[j] + (1.0 - w_head) * np.asarray(frames[n + j], dtype=np.float32)).astype(np.float32)
    return out


def loop_tail_frames(frames: int) -> int:
    """Extra frames generated for loop='crossfade' (a quarter of the clip, at least 1)."""
    return max(1, frames // 4) if frames >= 2 else 0


# ------------------------------------------------------------------ running

def _zpipe(pipe: Any) -> Any:
    """The ZRealismPipeline (a bare diffusers pipeline is wrapped, planned where its weights are)."""
    from .engine import ZRealismPipeline

    if isinstance(pipe, ZRealismPipeline):
        if pipe.sd is None:
            raise InputError("pipe was unloaded; load it again with load_pipeline().")
        return pipe
    sd = still_pipeline(pipe)
    device, dtype = param_device_dtype(sd.unet)
    return ZRealismPipeline(sd, device=device, dtype=dtype)


def _placer(zp: Any, mp: Any, sparsectrl: Any, prepare: Optional[Callable[[Attempt], None]]) -> Callable[[Attempt], None]:
    """prepare(attempt) for the motion job: the still pipeline's modules are placed exactly as the
    still sampler places them (`prepare`, default zp.place; inside ComfyUI its memory manager), then
    the parts only the motion pipeline has (motion modules, SparseCtrl) follow. On a model-offload
    attempt the motion pipeline gets diffusers' offload hooks itself (the still pipeline's hooks
    would not cover the motion UNet)."""
    base = prepare or zp.place

    def place(attempt: Attempt) -> None:
        base(attempt)
        if attempt.offload:
            zp.sd.remove_all_hooks()
            mp.enable_model_cpu_offload(device=attempt.device)
            return
        # the 2D weights are already there (shared Parameters); this moves the motion modules and buffers
        mp.unet.to(device=attempt.device, dtype=attempt.dtype)
        if sparsectrl is not None:
            sparsectrl.to(device=attempt.device, dtype=attempt.dtype)

    return place


def _run_in_chain(zp: Any, mp: Any, motion: Any, sparsectrl: Any, job: Callable[[Attempt], T], chain: Any, placement: Any,
                  fallback: Optional[bool], timings: Dict[str, float], memory_required: int) -> T:
    """Run the clip's job in the batch's OOM chain (or its own), with the motion modules (adapter,
    SparseCtrl) registered in the placement, the motion UNet moved with them and, on an offload attempt,
    the motion pipeline's own offload hooks."""
    from .runtime.placement import Placement

    place = placement if placement is not None else (chain.placement if chain is not None and chain.placement is not None else Placement(zp))
    place.extra_modules.update(motion_adapter=motion.adapter, sparsectrl=sparsectrl)
    place.followers, place.offload_pipeline = [mp.unet], mp
    own = chain is None
    if own:
        chain = zp.chain(place, fallback)
    elif chain.placement is not place:
        chain.placement = place
    try:
        return chain.run(job, memory_required=memory_required, timings=timings)
    finally:
        if own:
            chain.close()


def _restorer(zp: Any, mp: Any, sparsectrl: Any, restore: Optional[Callable[[Attempt], None]]) -> Callable[[Attempt], None]:
    base = restore or zp.restore

    def undo(attempt: Attempt) -> None:
        import torch

        if attempt.offload:
            mp.remove_all_hooks()
        base(attempt)
        if attempt.offload or attempt.dtype != zp.home_dtype:
            cpu = torch.device("cpu")
            mp.unet.to(device=cpu, dtype=zp.home_dtype)
            if sparsectrl is not None:
                sparsectrl.to(device=cpu, dtype=zp.home_dtype)

    return undo


def animate(
    pipe: Any,
    still: Any,
    *,
    motion_adapter: Any,
    frames: int = 16,
    fps: float = 8,
    strength: float = 0.5,
    seed: int = 0,
    steps: int = 20,
    cfg: float = 7.0,
    depth_map: Any = None,
    pose_map: Any = None,
    prompt: str = "",
    negative: str = "",
    callback: Optional[Callable[[int, int], None]] = None,
    loop: str = "off",
    color_lock: float = 1.0,
    mask: Any = None,
    depth_scale: float = 0.7,
    pose_scale: float = 0.7,
    control_end: float = 1.0,
    motion_lora: Any = None,
    motion_lora_strength: float = 1.0,
    sparsectrl: Any = None,
    sparsectrl_scale: float = 1.0,
    scheduler: str = "ddim",
    context_stride: int = 4,
    decode_chunk_size: int = 8,
    annotator_dirs: Optional[Sequence[Any]] = None,
    cancel: Any = None,
    fallback: Optional[bool] = None,
    prepare: Optional[Callable[[Attempt], None]] = None,
    restore: Optional[Callable[[Attempt], None]] = None,
    timings: Optional[Dict[str, float]] = None,
    chain: Any = None,
    placement: Any = None,
    cfg_end: float = DEFAULT_CFG_END,
    control_budget: str = DEFAULT_CONTROL_BUDGET,
    detail_scale: float = 0.0,
    detail_start: float = 0.0,
    detail_end: float = 1.0,
    detail_hint: str = "auto",
    detail_map: Any = None,
    preview: Optional[Callable[[int, int, Any], None]] = None,
) -> Clip:
    """Frames (list of H,W,3 float32; the still's size rounded to multiples of 8) of a clip animated from `still`.

    pipe: a loaded pipeline (engine.load_pipeline; a bare diffusers ControlNet img2img pipeline also works).
    motion_adapter: a motion module path (file or diffusers folder), a MotionAdapter or a MotionModel.
    strength: how far the frames may move away from the still (video-to-video denoise); runs
        int(steps * strength) steps, and `callback(step, total)` counts those.
    depth_map/pose_map: the still's maps (e.g. TransformResult.depth_map); missing ones are detected
        like the still sampler does, unless depth_scale/pose_scale is 0. control_end: fraction of the
        schedule the ControlNets act in.
    loop: "off", "crossfade" (same length, wraps smoothly) or "pingpong" (2*frames-2 frames).
    color_lock: 0..1, pull every frame's colours toward the still (inside `mask` if given).
    motion_lora: a motion LoRA path / MotionLora / list of them (needs peft); loaded for this call only.
    sparsectrl: an RGB SparseCtrl model (motion.load_sparsectrl): the still becomes the keyframe.
    scheduler: a name from schedulers.SCHEDULER_NAMES, configured with AnimateDiff's schedule (SparseCtrl
        keyframe mode always samples with DDIM; another choice is noted in `notes`).
    cancel: callable or threading.Event; stops within one step (CancelledError).
    fallback/chain/placement/prepare/restore: as in engine.transform (the one OOM chain; ComfyUI's
    placement); the memory estimate counts every frame generated.
    cfg_end / control_budget: as in engine.transform (guidance.py); an empty map switches its net off
    (control/empty.py), with a note in `.notes`.
    detail_scale / detail_start / detail_end / detail_hint / detail_map: the optional detail ControlNet,
    as in engine.transform (its hint is made from the still; not used in SparseCtrl keyframe mode).
    preview(step, total, latents): the clip's latents ([1, 4, F, h, w]) after each step, as in
    engine.transform (the ComfyUI node previews the middle frame).
    The result is a list subclass with `.fps`, `.seed` and `.timings`.
    """
    import torch

    from .adapters import views
    from .imaging.color_lock import color_lock as lock_colors
    from .engine import round_to_8

    _check_args(frames, fps, strength, steps, cfg, loop)
    if not 0.0 <= float(color_lock) <= 1.0:
        raise InputError(f"color_lock must be between 0 and 1; got {color_lock!r}.")
    if not 0.0 < float(control_end) <= 1.0:
        raise InputError(f"control_end must be above 0 and at most 1; got {control_end!r}.")
    for kind, value in (("depth", depth_scale), ("pose", pose_scale), ("sparsectrl", sparsectrl_scale)):
        window(kind, value, 0.0, float(control_end))  # the still's rule (every clip net acts from the start)
    check_guidance(cfg_end, control_budget)
    frames, steps = int(frames), int(steps)
    zp = _zpipe(pipe)
    timings = {} if timings is None else timings
    notes: List[str] = []  # runtime.note(notes, ...) for everything switched off or changed on the user's behalf
    src = to_rgb(still, name="still")
    h, w = round_to_8(*src.shape[:2])
    still8 = resize_rgb(src, h, w)
    motion = as_motion_model(motion_adapter)
    if sparsectrl is None:
        sparsectrl = motion.sparsectrl
    loras = _loras(motion, motion_lora, motion_lora_strength)
    if loras:
        require_peft()
    own_chain = chain is None and prepare is None
    if own_chain:  # one clip: one chain for its detection and its job (a node running a batch passes one)
        chain = zp.chain(placement, fallback)
    try:
        depth, pose = None, None
        if sparsectrl is None:  # the keyframe guides instead; missing maps are detected only for a net that is on
            from .control.maps import DEFAULT_RESOLUTION, prepare_maps
            from .models.detectors import using_store

            def detect(attempt: Attempt) -> Tuple[Any, Any]:
                """The still's control maps, inside the OOM chain: detectors run where the attempt runs."""
                with using_store(zp.extras.get("detectors")):  # inside ComfyUI: the pipeline's own detectors
                    return prepare_maps(
                        still8, depth=depth_map, pose=pose_map, need_depth=float(depth_scale) > 0, need_pose=float(pose_scale) > 0,
                        annotator_dirs=annotator_dirs if annotator_dirs is not None else zp.annotator_dirs,
                        device="cpu" if attempt.device.type == "cpu" else str(attempt.device), timings=timings, cancel=cancel,
                        mask=mask,
                    )

            detecting = (depth_map is None and float(depth_scale) > 0) or (pose_map is None and float(pose_scale) > 0)
            if detecting and chain is not None:
                depth, pose = run_detection(chain, zp, detect, DEFAULT_RESOLUTION, timings)
            else:  # given maps are only resized; the older callables form detects where the pipeline lives
                depth, pose = detect(zp.attempts(False)[0])
        check_cancel(cancel)

        n_gen = frames + (loop_tail_frames(frames) if loop == "crossfade" else 0)
        still_pil = to_pil(still8)
        off = np.zeros((h, w, 3), np.float32)
        cond = [to_pil(depth if depth is not None else off), to_pil(pose if pose is not None else off)]
        scales = [
            switch_off_empty("depth", depth, float(depth_scale), detected=depth_map is None, notes=notes) if depth is not None else 0.0,
            switch_off_empty("pose", pose, float(pose_scale), detected=pose_map is None, notes=notes) if pose is not None else 0.0,
        ]
        from .control.detail import detail_control

        if sparsectrl is not None and float(detail_scale) > 0:
            note(notes, "detail ControlNet not used: SparseCtrl keyframe mode guides the clip instead")
            detail_scale = 0.0
        detail = detail_control(zp, still8, scale=float(detail_scale), start=float(detail_start), end=float(detail_end),
                                hint=detail_hint, given=detail_map, notes=notes, timings=timings)
        # per-net windows only with a detail net (a two-net pipe keeps the scalar window, as before)
        starts: Any = 0.0
        ends: Any = float(control_end)
        if detail.present:
            starts, ends = [0.0, 0.0], [float(control_end)] * 2
            detail.extend(cond, scales, starts, ends, off=cond[0])
            if detail.active:
                cond[2] = to_pil(detail.image)

        n_run = expected_steps(steps, float(strength))
        if sparsectrl is not None and (float(cfg_end) < 1.0 or control_budget != "full"):
            note(notes, "cfg_end / control_budget not applied: SparseCtrl keyframe mode runs guidance on every step")
        if sparsectrl is not None and scheduler != "ddim":
            note(notes, f"scheduler {scheduler!r} not used: SparseCtrl keyframe mode samples with DDIM "
                        "(it starts from the noised still, which needs DDIM's position-independent step)")
        step_cb = make_step_callback(callback, cancel=cancel, preview=preview)

        def job(attempt: Attempt) -> List[np.ndarray]:
            nonlocal step_cb
            generator = torch.Generator("cpu").manual_seed(int(seed))  # CPU noise: the same clip on any device
            schedule = GuidanceSchedule(float(cfg_end), control_budget) if sparsectrl is None else GuidanceSchedule()  # fresh per attempt
            step_cb = make_step_callback(callback, cancel=cancel, preview=preview,
                                         on_step=schedule.on_step if schedule.needed else None)
            common = dict(
                num_inference_steps=steps,
                guidance_scale=schedule.guidance_scale(float(cfg), n_run) if schedule.needed else float(cfg),
                height=h, width=w, generator=generator, output_type="np", decode_chunk_size=max(1, int(decode_chunk_size)),
                callback_on_step_end=step_cb, callback_on_step_end_tensor_inputs=schedule.tensor_inputs(mp),
            )
            # the view's LoRAs (in place on the shared 2D weights) and IP-Adapter (on the motion UNet)
            # are active only in here; prompts are encoded in here too, so a text-encoder LoRA applies
            with stage("animating", timings, f"{n_gen} frames {w}x{h}, {steps} steps x strength {strength}, {attempt}"), \
                    views.active(zp, unet=mp.unet, scheduler_of=mp, timings=timings,
                                     cfg=common["guidance_scale"]) as adapter_kwargs:
                common.update(adapter_kwargs)
                with stage("encoding the prompts", timings):
                    # weighting, embeddings, long prompts, clip_skip: the same encoder as the still (text.encode)
                    pos_embeds, neg_embeds = pipeline_prompt_embeds(
                        mp, prompt or "", negative or "", cfg=common["guidance_scale"], options=getattr(zp, "text", None),
                        notes=notes)
                common.update(embeds_kwargs(mp, pos_embeds, neg_embeds))
                with torch.inference_mode(), scheduled(schedule, mp.controlnet, mp.unet), \
                        fixed_prompt_encoding(mp, pos_embeds, neg_embeds), \
                        cancel_between_calls(mp.vae.decoder, cancel, "between VAE decode chunks"):
                    if sparsectrl is not None:
                        out = run_sparsectrl(mp, still_pil, n_gen, float(strength), float(sparsectrl_scale), loop, common)
                    else:
                        out = mp(
                            video=[still_pil] * n_gen, strength=float(strength),
                            conditioning_frames=[[c] * n_gen for c in cond],
                            controlnet_conditioning_scale=scales, control_guidance_start=starts,
                            control_guidance_end=ends, **common,
                        ).frames
            return [np.asarray(f, dtype=np.float32) for f in out[0]]

        with zp.lock:  # one job at a time per loaded pipeline (the still sampler takes the same lock)
            with stage("building the motion pipeline", timings):
                mp = motion_pipeline(zp, motion.adapter, sparsectrl=sparsectrl)
                mp.scheduler = motion_scheduler(zp.sd, scheduler, getattr(zp, "base_scheduler_config", None))
            set_free_noise(mp, n_gen, motion.max_frames, context_stride)
            names: List[str] = []
            try:
                if loras:
                    with stage("loading motion LoRAs", timings, ", ".join(l.name for l in loras)):
                        for lora in loras:
                            mp.load_lora_weights(dict(lora.state_dict), adapter_name=lora.name)
                            names.append(lora.name)
                        mp.set_adapters(names, adapter_weights=[l.strength for l in loras])
                if prepare is not None:  # the older form of placement (callables)
                    raw = run_with_fallback(
                        job, zp.attempts(fallback),
                        prepare=_placer(zp, mp, sparsectrl, prepare), restore=_restorer(zp, mp, sparsectrl, restore),
                        timings=timings,
                    )
                else:
                    raw = _run_in_chain(zp, mp, motion, sparsectrl, job, chain, placement, fallback, timings,
                                        estimate_memory(h, w, dtype=zp.home_dtype, frames=n_gen, cfg=float(cfg) > 1.0,
                                                        controlnets=sum(1 for s_ in scales if s_ > 0) if sparsectrl is None else 1,
                                                        motion=True, decode_chunk=int(decode_chunk_size)))
            finally:
                if names:
                    mp.unload_lora_weights()  # the next call sees the plain motion model
    finally:
        if own_chain:
            chain.close()

    with stage("finishing frames", timings):
        raw = [np.clip(f, 0.0, 1.0) for f in raw]
        if loop == "crossfade":
            raw = crossfade_tail(raw, frames)
        if float(color_lock) > 0:
            raw = [lock_colors(f, still8, mask=mask, strength=float(color_lock)) for f in raw]
        if loop == "pingpong" and len(raw) > 2:
            raw = raw + raw[-2:0:-1]
    clip = Clip(np.ascontiguousarray(f, dtype=np.float32) for f in raw)
    clip.fps, clip.seed, clip.timings, clip.notes = float(fps), int(seed), timings, notes
    log.info("zrealism: animated %d frames %dx%d (%d denoising steps)", len(clip), w, h, step_cb.steps_done)
    return clip
