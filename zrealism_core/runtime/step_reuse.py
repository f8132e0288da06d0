"""Reusing work between denoising steps (issue 20): two levers, each off by default (interval 1).

control_reuse N (ControlNet residual reuse): inside the ControlNets' window, the nets run on every N-th
  step that has a net active and their residuals (already scaled and summed) serve the N - 1 steps
  after it. A cached entry serves a later step only with the same per-net scales (a window boundary
  in between forces a run) and a batch it covers (after the cfg_end cutoff: its conditional half).
unet_reuse N (DeepCache, Ma et al., CVPR 2024, on SD1.5): the full UNet runs every N-th UNet call;
  on the calls in between only the shallow blocks run: conv_in, the first down block's layers
  (without its downsampler), the last up block and conv_out, on the input to the last up block
  cached from the last full call. The shallow blocks still take the ControlNets' residuals of their
  resolution (the first 1 + len(down_blocks[0].resnets) of them), so on those calls each active
  ControlNet runs its shallow part only (`shallow_controlnet`: its conv_in, hint embedding, first
  down block and zero convs; no deep blocks, no mid block).

Both count per job (a StepReuse lives in one attempt's guidance.GuidanceSchedule). The step counter is
the number of UNet calls so far: diffusers calls the ControlNets just before the UNet in each step,
so the nets read the same counter the UNet is about to use. Batch layout: guidance.py's rule (the
conditional branch is the second half).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import InputError
from .instance_patch import method_replaced

DEFAULT_CONTROL_REUSE = 1
DEFAULT_UNET_REUSE = 1
MAX_INTERVAL = 8


def check(control_reuse: Any, unet_reuse: Any) -> None:
    for name, v in (("control_reuse", control_reuse), ("unet_reuse", unet_reuse)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_INTERVAL:
            raise InputError(f"{name} must be a whole number from 1 (off: every step) to {MAX_INTERVAL}; got {v!r}.")


def _half(x: Any, batch: int) -> Any:
    """x for a sample of `batch`: itself, or its conditional half if it was CFG-doubled; None if neither."""
    if x is None or x.shape[0] == batch:
        return x
    if x.shape[0] == 2 * batch:
        return x[batch:]
    return None


@dataclass
class StepReuse:
    """One job's reuse plan and state (see the module doc); `stats` counts what ran (tests, benchmark)."""

    control_reuse: int = DEFAULT_CONTROL_REUSE
    unet_reuse: int = DEFAULT_UNET_REUSE
    unet_calls: int = 0
    control_steps: int = 0  # multi-ControlNet calls that had a net active
    deep: Any = None  # input to the last up block, from the last full UNet call
    residuals: Optional[Tuple[Tuple[float, ...], List[Any], Any]] = None  # (scales, down, mid) of the last run
    changes: List[float] = field(default_factory=list)  # relative L2 change of the residuals between runs
    stats: Dict[str, int] = field(default_factory=lambda: {"unet_full": 0, "unet_shallow": 0, "control_run": 0,
                                                           "control_reused": 0, "control_shallow": 0})

    @property
    def active(self) -> bool:
        return self.control_reuse > 1 or self.unet_reuse > 1

    def shallow_now(self, batch: int) -> bool:
        """Whether the UNet call about to run (number `unet_calls`) is a shallow one."""
        return (self.unet_reuse > 1 and self.unet_calls % self.unet_reuse != 0 and self.deep is not None
                and _half(self.deep, batch) is not None)

    # ------------------------------------------------------------------ ControlNets

    def controlnet(self, run, shallow_run, sample: Any, scales: List[float]) -> Tuple[Any, Any]:
        """The residuals for this step: run(...) / shallow_run(...) compute them; reused where the plan says."""
        batch = sample.shape[0]
        shallow = self.shallow_now(batch)
        key = tuple(float(s) for s in scales)
        if not any(key):
            return run()  # nothing active: nothing to cache
        k = self.control_steps
        self.control_steps += 1
        if self.control_reuse > 1 and k % self.control_reuse != 0 and self.residuals is not None:
            got = self._cached(key, batch, shallow)
            if got is not None:
                self.stats["control_reused"] += 1
                return got
        if shallow:
            down, mid = shallow_run()
            self.stats["control_shallow"] += 1
        else:
            down, mid = run()
            self.stats["control_run"] += 1
        if self.control_reuse > 1 and down is not None:
            self._measure(key, down, batch)
            self.residuals = (key, list(down), mid)
        return down, mid

    def _cached(self, key: Tuple[float, ...], batch: int, shallow: bool) -> Optional[Tuple[Any, Any]]:
        scales, down, mid = self.residuals  # type: ignore[misc]
        if scales != key or (mid is None and not shallow):  # a shallow entry cannot serve a full step
            return None
        down = [_half(d, batch) for d in down]
        mid = _half(mid, batch) if mid is not None else None
        if any(d is None for d in down):
            return None
        return down, mid

    def _measure(self, key: Tuple[float, ...], down: List[Any], batch: int) -> None:
        """Relative L2 change against the previous run's residuals (same scales, the levels both have)."""
        if self.residuals is None or self.residuals[0] != key:
            return
        import torch

        prev = [_half(d, batch) for d in self.residuals[1]]
        pairs = [(a, b) for a, b in zip(down, prev) if b is not None and b.shape == a.shape]
        if not pairs:
            return
        num = sum(float(torch.sum((a.float() - b.float()) ** 2)) for a, b in pairs)
        den = sum(float(torch.sum(b.float() ** 2)) for _, b in pairs)
        self.changes.append((num / den) ** 0.5 if den > 0 else 0.0)


# ------------------------------------------------------------------ the shallow passes

def shallow_levels(unet: Any) -> int:
    """How many skip connections the shallow path has (conv_in + the first down block's layers)."""
    return 1 + len(unet.down_blocks[0].resnets)


def check_unet(unet: Any) -> None:
    """The UNet layouts the shallow path supports (SD1.5-style): raise InputError otherwise."""
    blocks = getattr(unet, "down_blocks", None)
    ups = getattr(unet, "up_blocks", None)
    cfg = getattr(unet, "config", None)
    if not blocks or not ups or len(blocks) < 2 or cfg is None:
        raise InputError("unet_reuse needs a UNet2DConditionModel with at least two resolution levels.")
    if len(ups[-1].resnets) != shallow_levels(unet) or getattr(ups[-1], "upsamplers", None) is not None:
        raise InputError("unet_reuse: this UNet's last up block does not mirror its first down block.")
    if cfg.get("center_input_sample") or cfg.get("addition_embed_type") == "image_hint" or cfg.get("class_embed_type"):
        raise InputError("unet_reuse supports SD1.5-style UNets (no class embeddings, no image-hint input).")


def _first_block(block: Any, h: Any, emb: Any, encoder_hidden_states: Any, cross_attention_kwargs: Any) -> List[Any]:
    """The first down block's layer outputs, without its downsampler (CrossAttnDownBlock2D or DownBlock2D)."""
    out = []
    attns = getattr(block, "attentions", None) or [None] * len(block.resnets)
    for resnet, attn in zip(block.resnets, attns):
        h = resnet(h, emb)
        if attn is not None:
            h = attn(h, encoder_hidden_states=encoder_hidden_states, cross_attention_kwargs=cross_attention_kwargs,
                     return_dict=False)[0]
        out.append(h)
    return out


def shallow_unet(unet: Any, deep: Any, sample: Any, timestep: Any, encoder_hidden_states: Any, *,
                 timestep_cond: Any = None, cross_attention_kwargs: Any = None, added_cond_kwargs: Any = None,
                 down_block_additional_residuals: Any = None, return_dict: bool = True, **_ignored: Any) -> Any:
    """UNet2DConditionModel.forward's shallow part on the cached deep feature `deep` (see the module doc)."""
    t_emb = unet.get_time_embed(sample=sample, timestep=timestep)
    emb = unet.time_embedding(t_emb, timestep_cond)
    aug = unet.get_aug_embed(emb=emb, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs)
    emb = emb + aug if aug is not None else emb
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    encoder_hidden_states = unet.process_encoder_hidden_states(
        encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added_cond_kwargs)
    h = unet.conv_in(sample)
    skips = [h] + _first_block(unet.down_blocks[0], h, emb, encoder_hidden_states, cross_attention_kwargs)
    if down_block_additional_residuals is not None:
        skips = [s + r for s, r in zip(skips, down_block_additional_residuals)]
    up = unet.up_blocks[-1]
    kw: Dict[str, Any] = dict(hidden_states=_half(deep, sample.shape[0]), temb=emb, res_hidden_states_tuple=tuple(skips))
    if getattr(up, "has_cross_attention", False):
        kw.update(encoder_hidden_states=encoder_hidden_states, cross_attention_kwargs=cross_attention_kwargs)
    h = up(**kw)
    if unet.conv_norm_out:
        h = unet.conv_act(unet.conv_norm_out(h))
    h = unet.conv_out(h)
    if not return_dict:
        return (h,)
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    return UNet2DConditionOutput(sample=h)


def shallow_controlnet(net: Any, sample: Any, timestep: Any, encoder_hidden_states: Any, controlnet_cond: Any,
                       conditioning_scale: float, levels: int, timestep_cond: Any = None,
                       cross_attention_kwargs: Any = None, **_ignored: Any) -> Tuple[List[Any], None]:
    """ControlNetModel.forward's residuals of the first `levels` skips only (no deep blocks, no mid block)."""
    import torch

    cfg = net.config
    if cfg.get("class_embed_type") or cfg.get("addition_embed_type"):
        raise InputError("unet_reuse supports SD1.5-style ControlNets (no class or added embeddings).")
    if cfg.get("controlnet_conditioning_channel_order", "rgb") == "bgr":
        controlnet_cond = torch.flip(controlnet_cond, dims=[1])
    t = timestep
    if not torch.is_tensor(t):
        t = torch.tensor([t], dtype=torch.float64 if isinstance(t, float) else torch.int64, device=sample.device)
    elif len(t.shape) == 0:
        t = t[None].to(sample.device)
    t = t.expand(sample.shape[0])
    emb = net.time_embedding(net.time_proj(t).to(dtype=sample.dtype), timestep_cond)
    h = net.conv_in(sample) + net.controlnet_cond_embedding(controlnet_cond)
    skips = [h] + _first_block(net.down_blocks[0], h, emb, encoder_hidden_states, cross_attention_kwargs)
    out = [block(s) * conditioning_scale for s, block in zip(skips[:levels], net.controlnet_down_blocks)]
    if cfg.get("global_pool_conditions"):
        out = [torch.mean(s, dim=(2, 3), keepdim=True) for s in out]
    return out, None


@contextlib.contextmanager
def installed(reuse: Optional[StepReuse], unet: Any) -> Iterator[None]:
    """For one job: the UNet's forward counts calls, caches the deep feature and runs the shallow path
    where the plan says (an instance attribute over the class's forward, removed on exit)."""
    if reuse is None or reuse.unet_reuse <= 1:
        if reuse is not None:  # control_reuse alone still needs the step counter
            handle = unet.register_forward_pre_hook(lambda *a: _count(reuse))
            try:
                yield
            finally:
                handle.remove()
        else:
            yield
        return
    check_unet(unet)
    full = unet.forward  # the bound class forward (with diffusers' decorators)

    def capture(module: Any, args: Any, kwargs: Dict[str, Any]) -> None:
        reuse.deep = kwargs.get("hidden_states", args[0] if args else None)

    def forward(sample: Any, timestep: Any, encoder_hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        if reuse.shallow_now(sample.shape[0]):
            if args or any(kwargs.get(k) is not None for k in _UNSUPPORTED):
                raise InputError(f"unet_reuse does not support these UNet inputs: {[k for k in _UNSUPPORTED if kwargs.get(k) is not None]}.")
            reuse.unet_calls += 1
            reuse.stats["unet_shallow"] += 1
            return shallow_unet(unet, reuse.deep, sample, timestep, encoder_hidden_states, **kwargs)
        reuse.unet_calls += 1
        reuse.stats["unet_full"] += 1
        handle = unet.up_blocks[-1].register_forward_pre_hook(capture, with_kwargs=True)
        try:
            return full(sample, timestep, encoder_hidden_states, *args, **kwargs)
        finally:
            handle.remove()

    with method_replaced(unet, "forward", forward):
        yield


_UNSUPPORTED = ("attention_mask", "encoder_attention_mask", "down_intrablock_additional_residuals", "class_labels")


def _count(reuse: StepReuse) -> None:
    reuse.unet_calls += 1
    reuse.stats["unet_full"] += 1
