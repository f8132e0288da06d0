"""Tiny random-weight AnimateDiff parts matching tiny_models' UNet, and writers that put them on
disk the way users have them (for tests, `zrealism selftest` and the ComfyUI integration test).

    tiny_motion_adapter(seed, max_seq_length)   MotionAdapter for TINY_UNET_CONFIG (32/64 channels)
    tiny_sparsectrl(seed)                       RGB SparseControlNetModel for the same UNet
    write_tiny_motion_adapter(path, layout)     "original": one .safetensors file with the keys of
                                                guoyww's mm_sd_v15_v2.ckpt; "folder": diffusers folder
    write_tiny_motion_lora(path, layout)        "original": keys of guoyww's v2_lora_*.ckpt
                                                (`...attention_blocks.0.processor.to_q_lora.down`);
                                                "diffusers": what save_lora_weights writes
    write_tiny_sparsectrl(path)                 diffusers folder of tiny_sparsectrl()

`motion_to_original` / `motion_lora_to_original` are the exact inverses of the key mappings in
zrealism_core.models.motion, so the loaders are tested against files laid out like the real downloads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Union

from .tiny_models import TINY_UNET_CONFIG, tiny_unet

PathLike = Union[str, Path]

TINY_MOTION_CONFIG: Dict[str, Any] = dict(
    block_out_channels=tuple(TINY_UNET_CONFIG["block_out_channels"]),
    motion_layers_per_block=TINY_UNET_CONFIG["layers_per_block"],  # must equal the UNet's
    # 32 groups and 8 heads like the real adapters: the loader infers everything else from the
    # tensor shapes and assumes these two (they do not change any tensor shape)
    motion_norm_num_groups=32,
    motion_num_attention_heads=8,
    motion_max_seq_length=32,
    use_motion_mid_block=True,
)

TINY_SPARSECTRL_CONFIG: Dict[str, Any] = dict(
    block_out_channels=tuple(TINY_UNET_CONFIG["block_out_channels"]),
    layers_per_block=TINY_UNET_CONFIG["layers_per_block"],
    in_channels=4,
    conditioning_channels=4,  # RGB SparseCtrl: keyframes are VAE-encoded (4 latent channels)
    down_block_types=("DownBlockMotion", "CrossAttnDownBlockMotion"),
    cross_attention_dim=TINY_UNET_CONFIG["cross_attention_dim"],
    conditioning_embedding_out_channels=(8, 8),
    norm_num_groups=2,
    use_simplified_condition_embedding=True,
    motion_num_attention_heads=4,
)


def tiny_motion_adapter(seed: int = 3, max_seq_length: int = 32, **overrides: Any):
    """A MotionAdapter for the tiny UNet. `max_seq_length` < frames exercises FreeNoise cheaply."""
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    config = dict(TINY_MOTION_CONFIG, motion_max_seq_length=int(max_seq_length), **overrides)
    adapter = MotionAdapter(**config).train(False)
    # Real adapters are trained; a fresh one starts with small random output projections, so
    # the motion modules would barely change the frames. Make them matter in tests.
    gen = torch.Generator().manual_seed(seed + 77)
    with torch.no_grad():
        for name, p in adapter.named_parameters():
            if name.endswith("proj_out.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return adapter


def tiny_sparsectrl(seed: int = 4):
    """An RGB SparseCtrl ControlNet for the tiny UNet, with non-zero output convs."""
    import torch
    from diffusers import SparseControlNetModel

    torch.manual_seed(seed)
    model = SparseControlNetModel(**TINY_SPARSECTRL_CONFIG).train(False)
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for m in list(model.controlnet_down_blocks) + [model.controlnet_mid_block]:
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.05)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.05)
    return model


# ------------------------------------------------------------------ diffusers -> original keys

def motion_to_original(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """diffusers MotionAdapter keys -> the layout of guoyww's mm_sd_v15*.ckpt files."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        # insert "temporal_transformer" after motion_modules.<i>
        i = parts.index("motion_modules")
        parts.insert(i + 2, "temporal_transformer")
        new = ".".join(parts)
        if new.endswith(".pos_embed.pe"):
            # the original keeps one positional table per attention block
            base = new[: -len(".pos_embed.pe")]
            out[base + ".attention_blocks.0.pos_encoder.pe"] = value
            out[base + ".attention_blocks.1.pos_encoder.pe"] = value.clone()
            continue
        new = (
            new.replace(".norm1.", ".norms.0.")
            .replace(".norm2.", ".norms.1.")
            .replace(".norm3.", ".ff_norm.")
            .replace(".attn1.", ".attention_blocks.0.")
            .replace(".attn2.", ".attention_blocks.1.")
        )
        out[new] = value
    return out


def motion_lora_to_original(state_dict: Mapping[str, Any]) -> Dict[str, Any]:
    """diffusers LoRA keys (`unet.<path>.attn1.to_q.lora.down.weight`) -> guoyww's motion-LoRA
    layout (`<path>.temporal_transformer...attention_blocks.0.processor.to_q_lora.down.weight`)."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        k = key[len("unet."):] if key.startswith("unet.") else key
        parts = k.split(".")
        i = parts.index("motion_modules")
        parts.insert(i + 2, "temporal_transformer")
        k = ".".join(parts)
        for proj in ("to_q", "to_k", "to_v"):
            k = k.replace(f".{proj}.lora.", f".processor.{proj}_lora.")
        k = k.replace(".to_out.0.lora.", ".processor.to_out_lora.")
        k = k.replace(".attn1.", ".attention_blocks.0.").replace(".attn2.", ".attention_blocks.1.")
        out[k] = value
    return out


# ------------------------------------------------------------------ writers

def _save(sd: Mapping[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in sd.items()}, str(path))
    return path


def write_tiny_motion_adapter(path: PathLike, layout: str = "original", seed: int = 3, max_seq_length: int = 32) -> Path:
    """A tiny motion module on disk: "original" single .safetensors (like mm_sd_v15_v2) or "folder"."""
    adapter = tiny_motion_adapter(seed, max_seq_length)
    p = Path(path)
    if layout == "original":
        return _save(motion_to_original(adapter.state_dict()), p)
    if layout == "folder":
        adapter.save_pretrained(p, safe_serialization=True)
        return p
    raise ValueError(f"layout must be 'original' or 'folder', not {layout!r}")


def tiny_motion_lora_state_dict(seed: int = 9, rank: int = 4, adapter_seed: int = 3) -> Dict[str, Any]:
    """diffusers-format LoRA weights for the tiny motion modules (recipe from engine-feasibility §2)."""
    import torch
    from diffusers import UNetMotionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNetMotionModel.from_unet2d(tiny_unet(0), tiny_motion_adapter(adapter_seed))
    targets = sorted(
        name for name, _ in unet.named_modules()
        if "motion_modules" in name and (name.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v") or name.endswith("to_out.0"))
    )
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=targets))
    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    # make the effect clearly visible on random weights
    return {f"unet.{k}": v.detach().clone() * 2.0 for k, v in sd.items()}


def write_tiny_motion_lora(path: PathLike, layout: str = "original", seed: int = 9) -> Path:
    """A tiny motion LoRA file: "original" (like v2_lora_ZoomIn.ckpt) or "diffusers" keys."""
    sd = tiny_motion_lora_state_dict(seed)
    if layout == "original":
        sd = motion_lora_to_original(sd)
    elif layout != "diffusers":
        raise ValueError(f"layout must be 'original' or 'diffusers', not {layout!r}")
    return _save(sd, Path(path))


def write_tiny_sparsectrl(path: PathLike, seed: int = 4) -> Path:
    """A tiny RGB SparseCtrl model as a diffusers folder (config.json + weights)."""
    model = tiny_sparsectrl(seed)
    p = Path(path)
    model.save_pretrained(p, safe_serialization=True)
    return p
