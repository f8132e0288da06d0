"""The still-image engine: SD1.5 img2img guided by a depth and an OpenPose ControlNet.

    pipe = load_pipeline(base, depth_controlnet, pose_controlnet, vae=None, device="auto", dtype="auto")
    result = transform(pipe, image, prompt="photo of ...", denoise=0.6, callback=lambda s, t: ...)
    result.image / result.depth_map / result.pose_map   # H,W,3 float32 in 0..1

`ZRealismPipeline` (what load_pipeline returns) is the object the video stage builds on:
`.sd` is the diffusers StableDiffusionControlNetImg2ImgPipeline (`.sd.controlnet` is a
MultiControlNetModel [depth, pose]), `.device` / `.dtype` where it runs, `.modules()` the torch
modules by name (for ComfyUI's ModelPatcher), `.place(device, dtype, offload)` moves them,
`.attempts()` the OOM fallback chain, `.restore(attempt)` undoes a fallback, `.lock` serialises jobs.
Device policy, fallback and step-callback plumbing live in device.py / runtime.py.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .models import device as devices
from .models import guidance, runtime
from .empty_maps import switch_off_empty
from .errors import InputError
from .imaging.images import resize_rgb, to_mask, to_rgb
from .models.schedulers import DEFAULT_SCHEDULER, make_scheduler
from .text.encode import TextOptions, check_clip_skip, pipeline_prompt_embeds

log = logging.getLogger("zrealism")

PathLike = Any
CONTROLNET_ROLES = ("controlnet_depth", "controlnet_pose", "controlnet_detail")  # modules() names of the nets, in MultiControlNet order
MAX_CACHED_PIPELINES = 2  # loaded pipelines kept; unload_pipeline() frees them explicitly


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


class ZRealismPipeline:
    """A loaded SD1.5 + depth + pose ControlNet pipeline and where it should run (see module doc).

    `with_lora(path, strength)` / `with_ip_adapter(...)` return light views of it (pipe_view.py)."""

    loras: Tuple = ()        # (LoraFile, strength) pairs a job applies; only views have any
    ip_adapter: Any = None   # an ip_adapter.IPAdapterSpec on views that have one

    def __init__(
        self,
        sd: Any,
        *,
        device: Any,
        dtype: Any,
        fallback: bool = True,
        key: Optional[Tuple] = None,
        sources: Optional[Dict[str, Optional[str]]] = None,
        annotator_dirs: Optional[Sequence[Any]] = None,
        text: Optional[TextOptions] = None,
    ) -> None:
        import torch

        self.sd = sd
        self.home_device = torch.device(device)
        self.home_dtype = dtype
        self.fallback = fallback
        self.key = key
        self.sources = dict(sources or {})
        self.annotator_dirs = list(annotator_dirs) if annotator_dirs else None
        self.text = text or TextOptions()  # clip_skip + embeddings folders (text.encode)
        self.lock = threading.RLock()
        self.base_scheduler_config = dict(sd.scheduler.config)
        self.extras: Dict[str, Any] = {}  # e.g. the ComfyUI bridge keeps its ModelPatchers here
        self._registered: Dict[str, Any] = {}  # register_module()
        self._offloaded = False

    # where the weights are now (they move during fallback and under ComfyUI's manager)
    @property
    def device(self) -> Any:
        if self._offloaded:
            return self.home_device
        try:
            return next(self.sd.unet.parameters()).device
        except StopIteration:  # pragma: no cover
            return self.home_device

    @property
    def dtype(self) -> Any:
        return self.sd.unet.dtype

    @property
    def controlnets(self) -> List[Any]:
        """[depth, pose] or, with the optional detail net, [depth, pose, detail] (the multi's order)."""
        return list(self.sd.controlnet.nets)

    @property
    def detail_controlnet(self) -> Any:
        """The optional third (detail: tile / line art / canny) ControlNet, or None."""
        nets = self.controlnets
        return nets[2] if len(nets) > 2 else None

    def modules(self) -> Dict[str, Any]:
        """Every torch module the pipeline uses, by role: the UNet, each ControlNet (controlnet_depth,
        controlnet_pose, then controlnet_<i> for nets added later), VAE, text encoder, and the modules other
        parts registered with register_module (IP-Adapter projection, image encoder ...). The placement
        layer (models.placement) and ComfyUI's memory manager see exactly these."""
        mods: Dict[str, Any] = {"unet": self.sd.unet}
        for i, net in enumerate(self.controlnets):
            mods[CONTROLNET_ROLES[i] if i < len(CONTROLNET_ROLES) else f"controlnet_{i}"] = net
        mods["vae"] = self.sd.vae
        mods["text_encoder"] = self.sd.text_encoder
        mods.update(self._registered)
        return mods

    def register_module(self, name: str, module: Any) -> None:
        """Add a module (e.g. an IP-Adapter image encoder) to modules(), so the placement layer moves it
        with the others and ComfyUI's memory manager tracks it. None removes the name."""
        if module is None:
            self._registered.pop(name, None)
        else:
            self._registered[name] = module

    def adapter_modules(self) -> Dict[str, Any]:
        """Modules a view adds for its jobs (IP-Adapter); none on a plain pipeline."""
        from .pipe_view import adapter_modules

        return adapter_modules(self)

    def with_lora(self, path: PathLike, strength: float = 1.0) -> "ZRealismPipeline":
        """A view of this pipeline with one more LoRA (kohya/A1111, LyCORIS, diffusers/peft SD1.5 file)."""
        from .pipe_view import with_lora

        return with_lora(self, path, strength)

    def with_ip_adapter(self, ip_adapter: PathLike, clip_vision: PathLike, image: Any, *, weight: float = 0.6,
                        start: float = 0.0, end: float = 1.0) -> "ZRealismPipeline":
        """A view of this pipeline with an SD1.5 IP-Adapter (plain, plus, plus-face), its CLIP ViT-H/14
        image encoder file and the reference image."""
        from .pipe_view import with_ip_adapter

        return with_ip_adapter(self, ip_adapter, clip_vision, image, weight=weight, start=start, end=end)

    def attempts(self, fallback: Optional[bool] = None) -> List[runtime.Attempt]:
        return runtime.attempt_chain(self.home_device, self.home_dtype, fallback=self.fallback if fallback is None else fallback)

    def chain(self, placement: Any = None, fallback: Optional[bool] = None) -> runtime.FallbackChain:
        """The OOM chain for one batch of jobs (use it as a context manager; see runtime.FallbackChain).
        placement: where the modules go (default models.placement.Placement; ComfyUI's inside ComfyUI)."""
        from .models.placement import Placement

        return runtime.FallbackChain(self.attempts(fallback), placement or Placement(self))

    def place(self, attempt_or_device: Any, dtype: Any = None, offload: bool = False, *, names: Optional[Sequence[str]] = None) -> None:
        """Move the modules (all, or those in `names`) to `device`/`dtype`; `offload` = diffusers'
        model CPU offload instead (all modules)."""
        if hasattr(attempt_or_device, "offload"):  # a runtime.Attempt (duck-typed: the pack may be imported twice)
            device, dtype, offload = attempt_or_device.device, attempt_or_device.dtype, attempt_or_device.offload
        else:
            device = attempt_or_device
        dtype = dtype or self.home_dtype
        if self._offloaded:
            self.sd.remove_all_hooks()
            self._offloaded = False
        mods = self.modules()
        if offload:
            for m in mods.values():
                m.to(dtype=dtype)
            self.sd.enable_model_cpu_offload(device=device)
            self._offloaded = True
            return
        for name, m in mods.items():
            if names is not None and name not in names:
                continue
            p = next(m.parameters(), None)
            if p is None or p.device != device or p.dtype != dtype:
                m.to(device=device, dtype=dtype)

    def restore(self, attempt: runtime.Attempt) -> None:
        """After a fallback attempt: drop offload hooks and put the weights back in the planned dtype
        (on the CPU; the next job's first attempt moves them to the GPU again)."""
        import torch

        if self._offloaded:
            self.sd.remove_all_hooks()
            self._offloaded = False
        if attempt.dtype != self.home_dtype or attempt.offload:
            for m in self.modules().values():
                m.to(device=torch.device("cpu"), dtype=self.home_dtype)

    def __repr__(self) -> str:
        return f"ZRealismPipeline(base={self.sources.get('base')!r}, device={self.home_device}, dtype={devices.dtype_name(self.home_dtype)})"


# ------------------------------------------------------------------ loading + cache

_CACHE: "OrderedDict[Tuple, ZRealismPipeline]" = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _file_key(path: Optional[PathLike]) -> Tuple:
    if path is None or str(path) == "":
        return ("",)
    p = Path(str(path)).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(p),)


def load_pipeline(
    base: PathLike,
    depth_controlnet: PathLike,
    pose_controlnet: PathLike,
    vae: Optional[PathLike] = None,
    device: Any = "auto",
    dtype: Any = "auto",
    detail_controlnet: Optional[PathLike] = None,
    **options: Any,
) -> ZRealismPipeline:
    """Load (or take from the cache) the SD1.5 + depth + OpenPose ControlNet pipeline.

    base: SD1.5 single file or diffusers folder; depth/pose_controlnet: files or folders; vae: optional.
    detail_controlnet: an optional third SD1.5 ControlNet (tile, line art, canny; file or folder), run
    by transform()/animate() only when their detail_scale is above 0 (detail.py).
    device: "auto" | "cuda" | "cuda:N" | "mps" | "cpu" (or a torch.device); dtype: "auto" | "fp32" | "fp16" | "bf16".
    options:
      config: diffusers config folder for single files (default: the shipped SD1.5 configs)
      fallback (True): CPU fallback for an unusable GPU and for out-of-memory during jobs
      cache (True): reuse an already loaded pipeline for the same files/device/dtype
      allow_download (False): let hub ids ("org/name") be downloaded - standalone use only
      annotator_dirs: folders with detector weights for automatic depth/pose maps
      embedding_dirs: folders with textual-inversion embeddings for `embedding:NAME` in prompts
      clip_skip (1): CLIP layer the prompts are read from, 1 = last, 2 = penultimate (CLIPSetLastLayer -2)
      cancel: callable or threading.Event, checked between the model files (CancelledError)
    Models are loaded on the CPU; a job moves them to the device (so OOM fallback covers it).
    """
    from .models import loaders

    config = options.pop("config", None)
    fallback = bool(options.pop("fallback", True))
    use_cache = bool(options.pop("cache", True))
    allow_download = bool(options.pop("allow_download", False))
    annotator_dirs = options.pop("annotator_dirs", None)
    text = TextOptions(clip_skip=check_clip_skip(options.pop("clip_skip", 1)),
                       embedding_dirs=[str(d) for d in options.pop("embedding_dirs", None) or ()])
    cancel = options.pop("cancel", None)
    if options:
        raise InputError(f"load_pipeline got unknown option(s): {', '.join(sorted(options))}.")

    plan = devices.plan(device, dtype, fallback=fallback)
    key = (
        _file_key(base), _file_key(depth_controlnet), _file_key(pose_controlnet), _file_key(vae),
        _file_key(config), str(plan.device), devices.dtype_name(plan.dtype),
    ) + ((("detail",) + _file_key(detail_controlnet)) if detail_controlnet else ())
    if use_cache:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                hit.fallback, hit.annotator_dirs = fallback, (list(annotator_dirs) if annotator_dirs else hit.annotator_dirs)
                if (hit.text.clip_skip, list(hit.text.embedding_dirs)) != (text.clip_skip, list(text.embedding_dirs)):
                    hit.text = text
                log.info("zrealism: using the already loaded pipeline (%s)", hit)
                return hit

    timings: Dict[str, float] = {}
    log.info("zrealism: device plan: %s", plan)
    with runtime.stage("loading models", timings, f"{Path(str(base)).name}, {devices.dtype_name(plan.dtype)}"):
        hub = allow_download and loaders._is_hub_id(str(base))
        checked = None if hub else loaders.check_base(base)  # base errors first: they are the most common
        unet_cfg = _hub_unet_config(base) if hub else loaders.base_unet_config(base, config)
        depth = loaders.load_controlnet(depth_controlnet, "depth", unet_cfg, plan.dtype, allow_download=allow_download)
        runtime.check_cancel(cancel, "between model-file loads")
        pose = loaders.load_controlnet(pose_controlnet, "pose", unet_cfg, plan.dtype, allow_download=allow_download)
        nets = [depth, pose]
        if detail_controlnet:
            runtime.check_cancel(cancel, "between model-file loads")
            nets.append(loaders.load_controlnet(detail_controlnet, "detail", unet_cfg, plan.dtype, allow_download=allow_download))
        runtime.check_cancel(cancel, "between model-file loads")
        vae_model = loaders.load_vae(vae, loaders.config_folder(config) if not Path(str(base)).is_dir() else Path(str(base)), plan.dtype) if vae else None
        runtime.check_cancel(cancel, "between model-file loads")
        sd = loaders.load_sd_pipeline(
            base, nets, vae=vae_model, config=config, dtype=plan.dtype, allow_download=allow_download,
            checked=checked,
        )
        sd.set_progress_bar_config(disable=True)
    pipe = ZRealismPipeline(
        sd, device=plan.device, dtype=plan.dtype, fallback=fallback, key=key,
        sources=dict(base=str(base), depth_controlnet=str(depth_controlnet), pose_controlnet=str(pose_controlnet),
                     vae=str(vae) if vae else None, config=str(config) if config else None,
                     detail_controlnet=str(detail_controlnet) if detail_controlnet else None),
        annotator_dirs=annotator_dirs, text=text,
    )
    pipe.extras["load_timings"] = timings
    if use_cache:
        with _CACHE_LOCK:
            _CACHE[key] = pipe
            while len(_CACHE) > MAX_CACHED_PIPELINES:
                old_key, old = _CACHE.popitem(last=False)
                log.info("zrealism: dropping the least recently used pipeline from the cache (%s)", old)
    return pipe


def _hub_unet_config(repo: str) -> Dict[str, Any]:  # pragma: no cover - network, opt-in only
    from diffusers import UNet2DConditionModel

    return dict(UNet2DConditionModel.load_config(repo, subfolder="unet"))


def unload_pipeline(pipe: Optional[ZRealismPipeline] = None) -> int:
    """Forget cached pipelines (one, or all with None) and free their memory. Returns how many."""
    with _CACHE_LOCK:
        keys = [k for k, v in _CACHE.items() if pipe is None or v is pipe]
        for k in keys:
            del _CACHE[k]
    if pipe is not None:
        pipe.sd = None
    devices.free_memory("cuda")
    return len(keys)


def cached_pipelines() -> List[ZRealismPipeline]:
    with _CACHE_LOCK:
        return list(_CACHE.values())


# ------------------------------------------------------------------ transform

def round_to_8(h: int, w: int) -> Tuple[int, int]:
    """Sides rounded to the nearest multiple of 8 (at least 8): SD's VAE/UNet need it."""
    return max(8, int(h / 8.0 + 0.5) * 8), max(8, int(w / 8.0 + 0.5) * 8)  # half rounds up


def _resize_mask(m: np.ndarray, h: int, w: int) -> np.ndarray:
    if m.shape == (h, w):
        return m
    from PIL import Image

    img = Image.fromarray(np.clip(m, 0, 1).astype(np.float32), mode="F").resize((w, h), Image.BILINEAR)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def _window(scale: float, start: float, end: float, name: str, notes: Optional[List[str]] = None) -> Tuple[float, float, float]:
    """Validated (scale, start, end); an empty window means the net is off (scale 0), said in `notes`."""
    for label, v in (("scale", scale), ("start", start), ("end", end)):
        if not isinstance(v, (int, float)) or not np.isfinite(v):
            raise InputError(f"{name} {label} must be a number; got {v!r}.")
    if scale < 0:
        raise InputError(f"{name} scale must be 0 or more; got {scale}.")
    if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0):
        raise InputError(f"{name} start/end must be between 0 and 1; got {start}..{end}.")
    if start >= end:
        if scale > 0:
            runtime.note(notes, f"{name} ControlNet off: start >= end ({name}_start {start:g}, {name}_end {end:g}); "
                                f"lower {name}_start or raise {name}_end")
        return 0.0, 0.0, 1.0  # diffusers rejects start >= end; such a window simply never applies
    return float(scale), float(start), float(end)


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
) -> TransformResult:
    """Turn a prepared drawing into a photo while keeping its geometry (depth) and pose (OpenPose).

    image: PIL or numpy H,W,3 (uint8 or float 0..1; alpha is composited on white). The result has the
    input's size with sides rounded to multiples of 8. mask: optional H,W (1 = character), used by the
    colour lock. depth_map / pose_map: supply maps (any size) to skip detection; otherwise they are
    computed with zrealism_core.control_maps from the annotator folders.
    steps/denoise: img2img runs int(steps * denoise) steps - `callback(step, total)` is called once per
    executed step with that total. depth_/pose_start/end: the fraction of the schedule each net acts
    in. scheduler: see schedulers.SCHEDULER_NAMES. color_lock: 0..1 strength of the LAB colour
    transfer toward the source inside the mask. cancel: threading.Event or callable -> True to stop
    (CancelledError within one step). fallback: override the pipeline's OOM fallback switch.
    chain: the batch's OOM chain (pipe.chain(); once one image fell back the rest of the batch stays
    there); default: a chain of this job alone. placement: where the models go (models.placement;
    the ComfyUI node passes one that goes through ComfyUI's memory manager). prepare/restore: the
    older form of placement (callables taking the attempt). preview(step, total, latents): the latents
    tensor after each step, e.g. for ComfyUI's previewer (runtime.make_step_callback).
    cfg_end: fraction of the executed steps that run classifier-free guidance; after it the UNet and
    ControlNets run at batch 1 (1.0 = every step, as before). control_budget: "full" or
    "prompt_branch" (ControlNets on the conditional half only, residuals reused): guidance.py.
    A map with nothing to say (a black pose map, a flat depth map) switches its net off, with a
    note in the log and in the result's notes (empty_maps.py).
    detail_scale / detail_start / detail_end / detail_hint / detail_map: the optional detail ControlNet
    (load_pipeline(detail_controlnet=...)): 0 = off (not run, not moved to the device); the hint is
    "auto" (from the net's file name), "tile", "canny" or "lineart", or your own detail_map (detail.py).
    """
    import torch

    from . import pipe_view

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
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF

    timings: Dict[str, float] = {}
    notes: List[str] = []  # runtime.note(notes, ...) for everything switched off or changed on the user's behalf
    d_scale, d_start, d_end = _window(depth_scale, depth_start, depth_end, "depth", notes)
    p_scale, p_start, p_end = _window(pose_scale, pose_start, pose_end, "pose", notes)
    rgb = to_rgb(image, name="image")
    h0, w0 = rgb.shape[:2]
    h, w = round_to_8(h0, w0)
    rgb8 = resize_rgb(rgb, h, w)
    mask8 = _resize_mask(to_mask(mask, (h0, w0)), h, w) if mask is not None else None
    dirs = annotator_dirs if annotator_dirs is not None else pipe.annotator_dirs
    maps: Dict[str, np.ndarray] = {}

    def detect(attempt: runtime.Attempt) -> None:
        """The control maps, inside the OOM chain: detectors run where the attempt runs."""
        from .control_maps import prepare_maps

        from .control_maps import using_store

        with using_store(pipe.extras.get("detectors")):  # inside ComfyUI: the pipeline's own detectors
            maps["maps"] = prepare_maps(
                rgb8, depth=depth_map, pose=pose_map, method=depth_method, annotator_dirs=dirs, resolution=detect_resolution,
                device="cpu" if attempt.device.type == "cpu" else str(attempt.device), timings=timings, cancel=cancel, mask=mask8,
            )

    from .models.placement import estimate_memory, run_detection

    own_chain = chain is None
    if own_chain:  # one job: its own chain (a node running a batch passes one chain for the batch)
        chain = (runtime.FallbackChain(pipe.attempts(fallback), prepare=prepare, restore=restore or pipe.restore)
                 if prepare is not None else pipe.chain(placement, fallback))
    if depth_map is None or pose_map is None:
        run_detection(chain, pipe, detect, detect_resolution, timings)  # an error closes the chain
    else:
        detect(chain.attempt)  # given maps: only resized
    depth8, pose8 = maps["maps"]

    from .imaging.images import to_pil

    init_pil, depth_pil, pose_pil = to_pil(rgb8), to_pil(depth8), to_pil(pose8)
    d_scale = switch_off_empty("depth", depth8, d_scale, detected=depth_map is None, notes=notes)
    p_scale = switch_off_empty("pose", pose8, p_scale, detected=pose_map is None, notes=notes)
    from .detail import detail_control

    detail = detail_control(pipe, rgb8, scale=detail_scale, start=detail_start, end=detail_end, hint=detail_hint,
                            given=detail_map, notes=notes, timings=timings)
    control_images, control_scales = [depth_pil, pose_pil], [d_scale, p_scale]
    control_starts, control_ends = [d_start, p_start], [d_end, p_end]
    detail.extend(control_images, control_scales, control_starts, control_ends, off=depth_pil)
    if detail.active:
        control_images[2] = to_pil(detail.image)

    def job(attempt: runtime.Attempt) -> Tuple[np.ndarray, int, runtime.Attempt]:
        schedule = guidance.GuidanceSchedule(float(cfg_end), control_budget)  # fresh per attempt
        step_cb = runtime.make_step_callback(
            callback, cancel=cancel, preview=preview, on_step=schedule.on_step if schedule.needed else None)
        scale = schedule.guidance_scale(float(cfg), n_steps) if schedule.needed else float(cfg)
        # CPU generator: the same seed gives the same noise on every device (and on the fallback)
        gen = torch.Generator("cpu").manual_seed(seed)
        detail = f"{n_steps} steps, {w}x{h}, {attempt}" + _schedule_detail(schedule, cfg, n_steps)
        # the view's LoRAs / IP-Adapter are active only inside this block (after placement; the
        # text encoder's LoRA too, so prompts must be encoded in here); weights restored on exit
        with pipe_view.active(pipe, timings=timings, cfg=scale) as adapter_kwargs:
            with runtime.stage("encoding the prompts", timings):
                # weighting, embeddings, long prompts and clip_skip (text.encode); diffusers gets the embeddings
                pos_embeds, neg_embeds = pipeline_prompt_embeds(
                    pipe.sd, prompt or "", negative or "", cfg=scale, options=pipe.text, notes=notes)
            with runtime.stage("synthesizing", timings, detail), guidance.scheduled(schedule, pipe.sd.controlnet, pipe.sd.unet):
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
        return np.asarray(out.images[0], dtype=np.float32), step_cb.steps_done, attempt

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

    if color_lock > 0:
        from .imaging.color_lock import color_lock as _color_lock

        with runtime.stage("colour lock", timings):
            result = _color_lock(result, rgb8, mask8, strength=float(color_lock))
    result = np.ascontiguousarray(np.clip(result, 0.0, 1.0).astype(np.float32))
    log.info("zrealism: transform %dx%d, %d steps on %s%s", w, h, done, used, f" (fallback: {fell_back})" if fell_back else "")
    return TransformResult(
        image=result, depth_map=depth8.astype(np.float32), pose_map=pose8.astype(np.float32), steps=done, seed=seed,
        device=str(used.device), dtype=devices.dtype_name(used.dtype), fallback=fell_back, timings=timings,
        notes=notes, detail_map=detail.image,
    )
