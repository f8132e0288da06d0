"""Device, dtype and memory inside ComfyUI.

Our diffusers modules are plain torch modules; ComfyUI's memory manager can only evict or make
room for models it tracks, so each one is wrapped in a ModelPatcher and loaded with
load_models_gpu before sampling (never by patching ComfyUI itself). Detectors too (detector_store).
"""
from __future__ import annotations

import logging
from typing import Any, List, Optional, Sequence

from . import host

log = logging.getLogger("zrealism")

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu")


def engine_device_dtype(device: str = "auto", precision: str = "auto") -> tuple:
    """(device, dtype) for load_pipeline: ComfyUI's choice inside ComfyUI (it honours --cpu,
    --force-fp16 ...), the core's own policy ("auto") outside."""
    if host.model_management is None:
        return device, precision
    torch = host.torch()
    dev = torch.device("cpu") if device == "cpu" else host.model_management.get_torch_device()
    if precision != "auto":
        return dev, precision
    if host.model_management.is_device_cpu(dev):
        return dev, torch.float32
    if host.model_management.should_use_fp16(dev):
        return dev, torch.float16
    if host.model_management.should_use_bf16(dev):
        return dev, torch.bfloat16
    return dev, torch.float32


class _Holder:  # built lazily: torch must not be imported when this module loads
    cls: Any = None


def _holder(module: Any) -> Any:
    """A plain nn.Module around a diffusers/transformers model. ModelPatcher writes `.device` and
    bookkeeping attributes on the object it manages; diffusers models have a read-only `.device`."""
    if _Holder.cls is None:
        torch = host.torch()

        class ZRealismModule(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

        _Holder.cls = ZRealismModule
    return _Holder.cls(module)


def module_patcher(pipe: Any, module: Any) -> Any:
    """The ModelPatcher ComfyUI tracks `module` with (ComfyUI itself keeps only a weak reference).
    The pipeline's own modules: made once and kept on the pipeline (keyed by id, checked by identity, so a
    new module never reuses a stale patcher). Any other module (the clip's motion adapter, SparseCtrl):
    kept on the module itself, so it goes when the module goes (the pipeline does not keep it alive)."""
    import comfy.model_patcher as model_patcher  # type: ignore  # only called inside ComfyUI (or fakes)

    if any(m is module for m in pipe.modules().values()):
        patchers, key = pipe.extras.setdefault("comfy_patchers", {}), id(module)
    else:
        patchers, key = vars(module).setdefault("_zrealism_comfy_patchers", {}), str(pipe.home_device)
    p = patchers.get(key)
    if p is None or p.model.inner is not module:
        offload = host.model_management.unet_offload_device() if host.model_management is not None else host.torch().device("cpu")
        p = patchers[key] = model_patcher.ModelPatcher(_holder(module), load_device=pipe.home_device, offload_device=offload)
    return p


def engine_patchers(pipe: Any, extra_modules: Sequence[Any] = ()) -> List[Any]:
    """One ModelPatcher per module of a ZRealismPipeline (pipe.modules(): UNet, ControlNets, VAE, text
    encoder and registered modules), plus one per extra module (the clip's motion adapter and SparseCtrl)."""
    return [module_patcher(pipe, m) for m in list(pipe.modules().values()) + list(extra_modules)]


def partial_vram() -> bool:
    """ComfyUI was started with --lowvram or --novram: models are loaded partially, never forced whole."""
    if host.model_management is None or not hasattr(host.model_management, "VRAMState"):
        return False
    return getattr(host.model_management, "vram_state", None) in (host.model_management.VRAMState.LOW_VRAM, host.model_management.VRAMState.NO_VRAM)


def _comfy_placement_class() -> Any:
    from ...zrealism_core.runtime.placement import Placement, stream_modules

    class ComfyPlacement(Placement):
        """The placement layer inside ComfyUI: our modules go through ComfyUI's memory manager.

        - planned attempt: load_models_gpu(our patchers, memory_required=estimate), whole
          (force_full_load) unless ComfyUI runs with --lowvram/--novram, then partially;
        - free others: free_memory(weights + estimate, device, keep_loaded=ours), then a whole load again;
        - offload: ComfyUI's partial (lowvram) load with twice the estimate reserved; the modules ComfyUI
          left on the offload device stream their weights per call (placement.stream_modules);
        - CPU fp32: ComfyUI unloads ours (its bookkeeping stays true), then the core moves them.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._hooks: List[Any] = []

        def patchers(self, skip: Sequence[str] = ()) -> List[Any]:
            return [module_patcher(self.pipe, m) for m in self.modules(skip).values()]

        def _ours(self) -> List[Any]:
            mine = {id(p) for p in self.patchers()}
            return [lm for lm in host.model_management.current_loaded_models if id(lm.model) in mine]

        def _unstream(self) -> None:
            for h in self._hooks:
                h.remove()
            self._hooks = []

        def unload(self) -> None:
            """ComfyUI unloads our models (as its own free_memory does for the ones it evicts)."""
            for lm in self._ours():
                lm.model_unload()
                host.model_management.current_loaded_models.remove(lm)
            host.model_management.soft_empty_cache()

        def place(self, attempt: Any, memory_required: int = 0, skip: Sequence[str] = ()) -> None:
            self._unstream()
            if attempt.device.type == "cpu" and self.pipe.home_device.type != "cpu":  # the CPU fallback
                self.unload()
                super().place(attempt, memory_required, skip)
                return
            self.pipe.restore(attempt)  # drops offload hooks of an earlier fallback; no-op otherwise
            patchers = self.patchers(skip)
            if attempt.free_others:
                need = memory_required + sum(p.model_size() for p in patchers)
                host.model_management.free_memory(need, attempt.device, keep_loaded=self._ours())
            partial = attempt.offload or partial_vram()
            reserve = int(memory_required * (2 if attempt.offload else 1))
            host.model_management.load_models_gpu(patchers, memory_required=reserve, force_full_load=not partial)
            if partial:
                device = attempt.device
                self._hooks = stream_modules(list(self.modules(skip).values()) + self.followers, device,
                                             lambda m: all(t.device == device for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))))
            else:
                for m in self.followers:  # their own buffers (the motion UNet's); the shared weights are there already
                    m.to(device=attempt.device, dtype=attempt.dtype)

        def restore(self, attempt: Any) -> None:
            self._unstream()
            super().restore(attempt)

    return ComfyPlacement


def placement(pipe: Any, extra_modules: Optional[dict] = None, followers: Sequence[Any] = ()) -> Optional[Any]:
    """The placement layer for `pipe` inside ComfyUI (ComfyPlacement above); None outside ComfyUI
    (the core then uses its own, zrealism_core.runtime.placement.Placement)."""
    if host.model_management is None:
        return None
    return _comfy_placement_class()(pipe, extra_modules=extra_modules, followers=followers)


def detector_store() -> Optional[Any]:
    """A per-pipeline detector store (models.detectors.DetectorStore) whose detectors ComfyUI's memory
    manager tracks: each detector's modules get a ModelPatcher, are loaded with load_models_gpu before
    every use, and ComfyUI's unload ("Unload models", POST /free) drops the detector from the store, so
    its RAM and VRAM are released. None outside ComfyUI (the core's module cache is used there)."""
    if host.model_management is None:
        return None
    import comfy.model_patcher as model_patcher  # type: ignore
    from comfy.patcher_extension import CallbacksMP  # type: ignore

    from ...zrealism_core.models.detectors import DetectorStore, detector_modules
    from ...zrealism_core.runtime.device import trim_when_freed

    store = DetectorStore()
    patchers: dict = {}
    offload = host.torch().device("cpu")

    def on_load(key: Any, detector: Any) -> None:
        mods = detector_modules(detector)
        for m in mods:
            trim_when_freed(m)  # ComfyUI's unload frees them; the heap goes back to the OS too
        made = []
        for m in mods:
            first = next(iter(list(m.parameters()) + list(m.buffers())), None)
            device = first.device if first is not None else offload
            p = model_patcher.ModelPatcher(_holder(m), load_device=device, offload_device=offload)

            def dropped(patcher: Any, unpatch_all: bool, key: Any = key, made_for: int = id(detector)) -> None:
                # Called inside ComfyUI's unload loop: the patcher must outlive it (ComfyUI holds it weakly and
                # cleans up its list when it dies), so only the weights go now; on_load replaces the patcher later.
                # Only this patcher's own detector leaves the store (a stale patcher must not drop a newer one);
                # compared by id, so the callback holds no reference that would keep the detector alive.
                if id(store.get(key)) == made_for and store.pop(key, None) is not None:
                    log.info("zrealism: ComfyUI unloaded the %s detector; it is loaded again when needed", key[0])
                patcher.model.inner = host.torch().nn.Module()

            p.add_callback(CallbacksMP.ON_DETACH, dropped)
            made.append(p)
        patchers[key] = made

    def before_use(key: Any, detector: Any) -> None:
        if patchers.get(key):
            host.model_management.load_models_gpu(patchers[key], force_full_load=True)

    store.on_load, store.before_use = on_load, before_use
    return store
