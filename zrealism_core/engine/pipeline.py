"""The still-image engine: SD1.5 img2img guided by a depth and an OpenPose ControlNet.

    pipe = load_pipeline(base, depth_controlnet, pose_controlnet, vae=None, device="auto", dtype="auto")
    result = transform(pipe, image, prompt="photo of ...", denoise=0.6, callback=lambda s, t: ...)
    result.image / result.depth_map / result.pose_map   # H,W,3 float32 in 0..1

`ZRealismPipeline` (what load_pipeline returns) is the object the video stage builds on:
`.sd` is the diffusers StableDiffusionControlNetImg2ImgPipeline (`.sd.controlnet` is a
MultiControlNetModel [depth, pose]), `.device` / `.dtype` where it runs, `.modules()` the torch
modules by name (for ComfyUI's ModelPatcher), `.place(device, dtype, offload)` moves them,
`.attempts()` the OOM fallback chain, `.restore(attempt)` undoes a fallback, `.lock` serialises jobs.
Device policy, fallback and step-callback plumbing live in runtime/ (device.py, fallback.py).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple


from ..runtime import device as devices
from ..runtime import fallback as runtime
from ..errors import InputError
from ..models.files import file_key
from ..text.encode import TextOptions, check_clip_skip

log = logging.getLogger("zrealism")

PathLike = Any
CONTROLNET_ROLES = ("controlnet_depth", "controlnet_pose", "controlnet_detail")  # modules() names of the nets, in MultiControlNet order
MAX_CACHED_PIPELINES = 2  # loaded pipelines kept; unload_pipeline() frees them explicitly


class ZRealismPipeline:
    """A loaded SD1.5 + depth + pose ControlNet pipeline and where it should run (see module doc).

    `with_lora(path, strength)` / `with_ip_adapter(...)` return light views of it
    (PipelineView below; adapters/views.py builds and activates them)."""

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
        layer (runtime.placement) and ComfyUI's memory manager see exactly these."""
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
        from ..adapters.views import adapter_modules

        return adapter_modules(self)

    def with_lora(self, path: PathLike, strength: float = 1.0) -> "ZRealismPipeline":
        """A view of this pipeline with one more LoRA (kohya/A1111, LyCORIS, diffusers/peft SD1.5 file)."""
        from ..adapters.views import with_lora

        return with_lora(self, path, strength)

    def with_ip_adapter(self, ip_adapter: PathLike, clip_vision: PathLike, image: Any, *, weight: float = 0.6,
                        start: float = 0.0, end: float = 1.0) -> "ZRealismPipeline":
        """A view of this pipeline with an SD1.5 IP-Adapter (plain, plus, plus-face), its CLIP ViT-H/14
        image encoder file and the reference image."""
        from ..adapters.views import with_ip_adapter

        return with_ip_adapter(self, ip_adapter, clip_vision, image, weight=weight, start=start, end=end)

    def view(self, loras: Sequence[Tuple[Any, float]] = (), ip_adapter: Any = None) -> "PipelineView":
        """This pipeline's root plus exactly these (LoraFile, strength) pairs and IP-Adapter spec."""
        return PipelineView(getattr(self, "root", self), loras, ip_adapter)

    def attempts(self, fallback: Optional[bool] = None) -> List[runtime.Attempt]:
        return runtime.attempt_chain(self.home_device, self.home_dtype, fallback=self.fallback if fallback is None else fallback)

    def chain(self, placement: Any = None, fallback: Optional[bool] = None) -> runtime.FallbackChain:
        """The OOM chain for one batch of jobs (use it as a context manager; see runtime.FallbackChain).
        placement: where the modules go (default runtime.placement.Placement; ComfyUI's inside ComfyUI)."""
        from ..runtime.placement import Placement

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


class PipelineView(ZRealismPipeline):
    """A ZRealismPipeline that is a root pipeline plus its own LoRAs / IP-Adapter (see module doc)."""

    _OWN = ("root", "loras", "ip_adapter")

    def __init__(self, root: ZRealismPipeline, loras: Sequence[Tuple[Any, float]] = (), ip_adapter: Any = None) -> None:
        # no super().__init__: all state lives on the root
        object.__setattr__(self, "root", root)
        object.__setattr__(self, "loras", tuple(loras))
        object.__setattr__(self, "ip_adapter", ip_adapter)

    def __getattr__(self, name: str) -> Any:  # only for names not found on the view itself
        if name in PipelineView._OWN:
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "root"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in PipelineView._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.root, name, value)

    def modules(self) -> Dict[str, Any]:
        """The root's modules plus this view's IP-Adapter modules (placed with them)."""
        from ..adapters.views import adapter_modules

        mods = dict(self.root.modules())
        mods.update(adapter_modules(self))
        return mods

    def __repr__(self) -> str:
        parts = [f"{l.name}@{s:g}" for l, s in self.loras]
        if self.ip_adapter is not None:
            parts.append(f"IP-Adapter {self.ip_adapter.name}@{self.ip_adapter.weight:g}")
        return f"{self.root!r} + [{', '.join(parts)}]"


# ------------------------------------------------------------------ loading + cache

_CACHE: "OrderedDict[Tuple, ZRealismPipeline]" = OrderedDict()
_CACHE_LOCK = threading.Lock()


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
    by transform()/animate() only when their detail_scale is above 0 (control/detail.py).
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
    from ..models import loaders

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
        file_key(base), file_key(depth_controlnet), file_key(pose_controlnet), file_key(vae),
        file_key(config), str(plan.device), devices.dtype_name(plan.dtype),
    ) + ((("detail",) + file_key(detail_controlnet)) if detail_controlnet else ())
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


