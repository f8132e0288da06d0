"""Pipe views: a loaded pipeline plus the LoRAs and IP-Adapter one graph asked for.

    lora_pipe = pipe.with_lora("models/loras/realism.safetensors", 0.8)     # -> PipelineView
    ip_pipe = lora_pipe.with_ip_adapter("ip-adapter_sd15.safetensors", "CLIP-ViT-H-14.safetensors", image, weight=0.6)
    transform(ip_pipe, drawing, ...)      # this job: the LoRA at 0.8 + the IP-Adapter
    transform(pipe, drawing, ...)         # the plain pipeline, bit-identical to before

A view shares everything with the pipeline it came from (the same `sd`, modules, lock, caches:
attribute reads and writes go to the root pipeline), and adds only `loras` (a tuple of
(LoraFile, strength)) and `ip_adapter` (an IPAdapterSpec or None). It is a Pipe, so
every function that takes a pipe takes a view. The class is engine.pipeline.PipelineView; the
functions here take any pipe (duck-typed: a Pipe or a view) so that adapters/ stays
below engine/ (zrealism_core/layers.py). Files are read once per root pipeline (cached in
`root.extras`); the weights change only in `active(...)`, which the still and the clip jobs enter
while holding `pipe.lock`, after the models were placed. The LoRAs stay applied after the job, as in
ComfyUI, until a job needs other weights: it restores the saved originals first (set_loras), so the
plain pipe's results stay bit-identical. `restore_weights(pipe)` puts the originals back at once.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from ..models.files import file_key
from ..runtime import fallback as runtime

Pipe = Any  # a ZRealismPipeline or a PipelineView (engine/pipeline.py)


def root_of(pipe: Pipe) -> Pipe:
    return getattr(pipe, "root", pipe)


def with_lora(pipe: Pipe, path: Any, strength: float = 1.0) -> Pipe:
    """A view of `pipe` with one more LoRA at `strength`. The file is read and checked against this
    pipeline now (ModelFileError otherwise, the pipeline unchanged), once per file."""
    from . import lora as loras

    s = loras.check_strength(strength)
    root = root_of(pipe)
    if root.sd is None:
        from ..errors import InputError

        raise InputError("pipe was unloaded; load it again with load_pipeline().")
    cache: Dict[Tuple, Any] = root.extras.setdefault("lora_files", {})
    key = file_key(path)
    lf = cache.get(key)
    if lf is None:
        with runtime.stage("reading LoRA", None, Path(str(path)).name):
            lf = loras.parse_lora(path, lora_models(root))
        cache[key] = lf
    return root.view(tuple(getattr(pipe, "loras", ())) + ((lf, s),), getattr(pipe, "ip_adapter", None))


def with_ip_adapter(pipe: Pipe, ip_adapter: Any, clip_vision: Any, image: Any, *,
                    weight: float = 0.6, start: float = 0.0, end: float = 1.0) -> Pipe:
    """A view of `pipe` with an IP-Adapter (file) and its image encoder (clip_vision file) fed the
    reference `image` (PIL / numpy H,W,3). Files are checked now and loaded once per pipeline."""
    from . import ip_adapter as ipa

    root = root_of(pipe)
    if root.sd is None:
        from ..errors import InputError

        raise InputError("pipe was unloaded; load it again with load_pipeline().")
    spec = ipa.make_spec(root, ip_adapter, clip_vision, image, weight=weight, start=start, end=end)
    return root.view(tuple(getattr(pipe, "loras", ())), spec)


def with_adapters(pipe: Pipe, loras: Sequence[Tuple[Any, float]] = (), ip_adapter: Any = None,
                  clip_vision: Any = None, ip_weight: float = 0.6, reference: Any = None) -> Pipe:
    """`pipe` with the (file, strength) LoRAs in order and, if `ip_adapter` is given, the IP-Adapter fed
    `reference`; `pipe` itself when neither is asked for (the CLI's and runner's one way to build views)."""
    for path, strength in loras or ():
        pipe = with_lora(pipe, path, strength)
    if ip_adapter:
        pipe = with_ip_adapter(pipe, ip_adapter, clip_vision, reference, weight=float(ip_weight))
    return pipe


def lora_models(pipe: Pipe) -> Dict[str, Any]:
    sd = root_of(pipe).sd
    return {"unet": sd.unet, "text_encoder": sd.text_encoder}


_PATCHED = "lora_patched"  # root.extras: the (LoraFile, strength) pairs the shared weights carry now, and their backups


def set_loras(pipe: Pipe, loras: Sequence[Tuple[Any, float]], timings: Optional[Dict[str, float]] = None) -> None:
    """Make the root pipeline's weights carry exactly `loras` ((LoraFile, strength), none at 0).

    The weights stay patched after the job, as ComfyUI keeps a model patched while it is loaded:
    the next job with the same LoRAs pays nothing, and a job that needs other weights (the plain
    pipe, other strengths) first restores the saved originals, bit-identically. Each switch would
    otherwise allocate and fault in a backup as large as the patched weights (1.3 GB for a full
    SD1.5 LoRA in fp32) and free it again. Call with the pipe's job lock held."""
    root = root_of(pipe)
    now = root.extras.get(_PATCHED)
    wanted = tuple((lf, float(s)) for lf, s in loras)
    if now is not None and len(now[0]) == len(wanted) and all(a is b and s == t for (a, s), (b, t) in zip(now[0], wanted)):
        return
    if now is not None:
        with runtime.stage("restoring LoRA weights", timings):
            now[1].restore()
        del root.extras[_PATCHED]
    if wanted:
        from . import lora as lora_mod

        with runtime.stage("applying LoRAs", timings, ", ".join(f"{l.name}@{s:g}" for l, s in wanted)):
            applied = lora_mod.apply(lora_models(root), wanted)  # on an error it restores what it changed
        root.extras[_PATCHED] = (wanted, applied)


def restore_weights(pipe: Pipe) -> None:
    """Put the base weights back now (e.g. before using `pipe.sd` directly, outside transform/animate)."""
    with root_of(pipe).lock:
        set_loras(pipe, ())


@contextlib.contextmanager
def active(pipe: Pipe, unet: Any = None, scheduler_of: Any = None,
           timings: Optional[Dict[str, float]] = None, cfg: float = 7.0) -> Iterator[Dict[str, Any]]:
    """For one job: the weights carry exactly the view's LoRAs (set_loras: patched in place, kept
    for the next job with the same LoRAs) and the view's IP-Adapter is installed on `unet` (default
    the still UNet; the clip passes its motion UNet) until the block ends. Yields the extra keyword
    arguments for the diffusers pipeline call (`ip_adapter_image_embeds`, or nothing). `scheduler_of`:
    the diffusers pipeline whose scheduler's timesteps the IP-Adapter's start/end refer to. `cfg`: the
    guidance scale the pipeline starts with (above 1: image embeds are passed as [uncond; cond])."""
    root = root_of(pipe)
    set_loras(root, [(l, s) for l, s in getattr(pipe, "loras", ()) if float(s) != 0.0], timings)
    spec = getattr(pipe, "ip_adapter", None)
    if spec is None or float(spec.weight) == 0.0:  # weight 0 = no IP-Adapter at all (bit-identical to none)
        yield {}
        return
    from . import ip_adapter as ipa

    with ipa.installed(root, spec, unet if unet is not None else root.sd.unet,
                       scheduler_of if scheduler_of is not None else root.sd, timings,
                       cfg=float(cfg) > 1.0) as kwargs:
        yield kwargs


def adapter_modules(pipe: Pipe) -> Dict[str, Any]:
    """Torch modules a view adds for its job (IP-Adapter image encoder, projection, attention
    weights), by name; placed and tracked by ComfyUI's memory manager with the pipeline's own."""
    spec = getattr(pipe, "ip_adapter", None)
    if spec is None or float(spec.weight) == 0.0:
        return {}
    from . import ip_adapter as ipa

    return ipa.modules_of(root_of(pipe), spec)
