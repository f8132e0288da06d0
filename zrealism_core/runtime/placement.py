"""The one model-placement layer: where a pipeline's modules are for one job, and how much memory the
job needs on top of the weights.

    placement = Placement(pipe)                      # CLI / Python API: torch moves
    chain = runtime.FallbackChain(pipe.attempts(), placement)
    chain.run(job, memory_required=estimate_memory(512, 512, dtype=torch.float16), skip=("controlnet_pose",))

- `Placement.place(attempt, memory_required, skip=())` puts every module in use (ZRealismPipeline.modules():
  the UNet, the ControlNets, VAE, text encoder, and whatever other helpers registered with
  `pipe.register_module`) where `attempt` says; modules named in `skip` (nets that are off) are not
  moved to the device. `restore(attempt)` undoes a fallback attempt's placement.
- Inside ComfyUI the bridge (nodes/bridge/memory.py) subclasses it: the modules are loaded through ComfyUI's
  memory manager (`load_models_gpu(patchers, memory_required=..., force_full_load=...)`), so ComfyUI
  knows them, evicts other models to make room and can unload ours.
- `estimate_memory(...)` is the activation memory of one job (what `memory_required` reserves).
- `stream_modules(modules, device, resident)`: forward hooks that bring a module that is not resident on
  `device` there for its own forward and send it back after (what makes a partial/lowvram load of a
  plain torch model run: ComfyUI's own partial load only casts its comfy.ops layers).

Nothing here imports ComfyUI.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TypeVar

from . import device as devices

T = TypeVar("T")

log = logging.getLogger("zrealism")

# Activation memory per latent pixel per batch element per byte of dtype, for an SD1.5 UNet step with
# PyTorch's memory-efficient attention (ComfyUI budgets ~0.01 MiB per latent pixel per dtype byte for SD1.x
# with efficient attention; we keep a 2x margin for diffusers' less in-place code).
UNET_BYTES_PER_LATENT_PX = int(0.02 * 2**20)
CONTROLNET_SHARE = 0.5   # a ControlNet is the UNet's encoder half: about half a UNet's activations
MOTION_SHARE = 0.3       # AnimateDiff's temporal attention blocks on top of the 2D UNet
VAE_DECODE_BYTES_PER_PX = 2200  # per output pixel per dtype byte for one decoded image (ComfyUI budgets ~2178 for SD1.x)


def estimate_memory(
    height: int,
    width: int,
    *,
    dtype: Any = None,
    batch: int = 1,
    frames: int = 1,
    cfg: bool = True,
    controlnets: int = 2,
    motion: bool = False,
    decode_chunk: int = 1,
) -> int:
    """Bytes of activations one job needs on the device besides the weights.

    height/width: the output image in pixels; batch: images sampled together; frames: video frames
    (sampled as one batch); cfg: classifier-free guidance doubles the UNet batch; controlnets: nets in
    use (scale > 0 and a non-empty window); motion: AnimateDiff motion modules; decode_chunk: frames the
    VAE decodes at once. The UNet step and the VAE decode do not overlap, so the larger one counts.
    """
    size = _dtype_size(dtype)
    latent_px = max(1, int(height) // 8) * max(1, int(width) // 8)
    unet_batch = max(1, int(batch)) * max(1, int(frames)) * (2 if cfg else 1)
    factor = 1.0 + CONTROLNET_SHARE * max(0, int(controlnets)) + (MOTION_SHARE if motion else 0.0)
    unet = unet_batch * latent_px * size * UNET_BYTES_PER_LATENT_PX * factor
    decode = max(1, min(int(decode_chunk), int(frames) * int(batch))) * int(height) * int(width) * size * VAE_DECODE_BYTES_PER_PX
    return int(max(unet, decode))


def run_detection(chain: Any, pipe: Any, detect: Callable[[Any], T], resolution: int,
                  timings: Optional[Dict[str, float]] = None) -> T:
    """Run `detect(attempt)` (the control-map detectors) in the batch's OOM chain, like the job: it
    moves none of the pipeline's diffusion modules, and reserves the detectors' activations at
    `resolution` (an out-of-memory there falls back as the job would)."""
    memory = estimate_memory(resolution, resolution, dtype=pipe.home_dtype, cfg=False, controlnets=0)
    return chain.run(detect, memory_required=memory, timings=timings, skip=tuple(pipe.modules()))


def _dtype_size(dtype: Any) -> int:
    import torch

    if dtype is None:
        return 2
    return int(torch.empty((), dtype=dtype).element_size())


class Placement:
    """Where a ZRealismPipeline's modules are for an attempt (see the module doc). The default moves
    them with torch; offload attempts use diffusers' model CPU offload.

    extra_modules: modules only this job uses, by name (the clip's motion adapter, SparseCtrl);
    `followers` are moved with them (the motion UNet holds the adapter's buffers)."""

    def __init__(self, pipe: Any, *, extra_modules: Optional[Mapping[str, Any]] = None, followers: Sequence[Any] = ()) -> None:
        self.pipe = pipe
        self.extra_modules = dict(extra_modules or {})
        self.followers = list(followers)
        self.offload_pipeline: Any = None  # a second diffusers pipeline on the same modules (the clip's)

    def modules(self, skip: Iterable[str] = ()) -> Dict[str, Any]:
        """Every module in use by name, except `skip` (the nets that are off)."""
        skip = set(skip)
        mods = dict(self.pipe.modules())
        mods.update(self.extra_modules)
        return {k: m for k, m in mods.items() if k not in skip and m is not None}

    def place(self, attempt: Any, memory_required: int = 0, skip: Iterable[str] = ()) -> None:
        if attempt.free_others and attempt.device.type != "cpu":
            devices.free_memory(attempt.device)  # outside ComfyUI the "others" are our own leftovers
        self.pipe.place(attempt, names=list(self.modules(skip)))
        if attempt.offload and self.offload_pipeline is not None:
            # the still pipeline's offload hooks would not cover the motion UNet: the job's pipeline gets its own
            self.pipe.sd.remove_all_hooks()
            self.offload_pipeline.enable_model_cpu_offload(device=attempt.device)
        self._place_extras(attempt, skip)

    def _place_extras(self, attempt: Any, skip: Iterable[str]) -> None:
        extras = [m for k, m in self.extra_modules.items() if k not in set(skip) and m is not None] + self.followers
        if attempt.offload:
            return  # the caller's pipeline got diffusers' offload hooks, which move them per call
        for m in extras:
            m.to(device=attempt.device, dtype=attempt.dtype)

    def restore(self, attempt: Any) -> None:
        """After a fallback attempt: drop offload hooks, weights back to the planned dtype on the CPU."""
        import torch

        if attempt.offload and self.offload_pipeline is not None:
            self.offload_pipeline.remove_all_hooks()
        self.pipe.restore(attempt)
        if attempt.offload or attempt.dtype != self.pipe.home_dtype:
            for m in [m for m in self.extra_modules.values() if m is not None] + self.followers:
                m.to(device=torch.device("cpu"), dtype=self.pipe.home_dtype)


# ------------------------------------------------------------------ partial loading

def stream_modules(modules: Iterable[Any], device: Any, resident: Callable[[Any], bool]) -> List[Any]:
    """For every sub-module holding weights that is not `resident` on `device`, hooks that move it to
    `device` for its forward and back to where it was afterwards. Returns the hook handles (remove them
    when the modules are fully loaded again)."""
    import torch

    device = torch.device(device)
    handles: List[Any] = []
    for root in modules:
        for m in root.modules():
            own = list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))
            if not own or resident(m):
                continue
            home = own[0].device

            def pre(mod: Any, args: Any, home: Any = home) -> None:
                mod.to(device)

            def post(mod: Any, args: Any, output: Any, home: Any = home) -> None:
                mod.to(home)

            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    if handles:
        log.info("zrealism: partial load: %d modules stream their weights to %s per call", len(handles) // 2, device)
    return handles
