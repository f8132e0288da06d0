"""Tiny IP-Adapter files and a tiny CLIP vision model for the tiny SD1.5 UNet (tiny_models).

    tiny_clip_vision_config(**overrides) -> dict      width 64 (1 head of 64), 2 layers, 28 px, projection 32
    write_tiny_clip_vision(path, seed, **overrides)   transformers layout (vision_model.* + visual_projection), .safetensors
    write_tiny_ip_adapter(path, layout, seed)         layout "plain" | "plus" | "plus_face" in the released
                                                      flat-key layout (image_proj.*, ip_adapter.N.to_k_ip/to_v_ip)
    write_sdxl_ip_adapter(path)                       what an SDXL IP-Adapter looks like (cross-attention 2048), to be refused
The plain adapter takes the encoder's projected embedding (32), plus/plus-face its hidden states (64),
like the real ip-adapter_sd15 (ViT-H: 1024) and ip-adapter-plus_sd15 (ViT-H: 1280).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

PathLike = Union[str, Path]

TINY_CLIP_VISION: Dict[str, Any] = dict(
    hidden_size=64, intermediate_size=37, num_attention_heads=1, num_hidden_layers=2, image_size=28, patch_size=14,
    projection_dim=32, num_channels=3, hidden_act="gelu", layer_norm_eps=1e-5,
)


def tiny_clip_vision_config(**overrides: Any) -> Dict[str, Any]:
    cfg = dict(TINY_CLIP_VISION)
    cfg.update(overrides)
    if "hidden_size" in overrides and "num_attention_heads" not in overrides:
        cfg["num_attention_heads"] = max(1, cfg["hidden_size"] // 64)
    return cfg


def tiny_clip_vision(seed: int = 0, **overrides: Any) -> Any:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**tiny_clip_vision_config(**overrides))).train(False)


def _save(sd: Dict[str, Any], path: PathLike) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(p))
    else:  # the original .bin layout: a nested dict
        import torch

        nested: Dict[str, Dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
        for k, v in sd.items():
            head, _, rest = k.partition(".")
            nested[head][rest] = v
        torch.save(nested, str(p))
    return p


def write_tiny_clip_vision(path: PathLike, seed: int = 0, **overrides: Any) -> Path:
    model = tiny_clip_vision(seed, **overrides)
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    return _save(sd, path)


def _cross_layers(unet: Any):
    """(key id, hidden size) of each cross-attention layer, in the order IP-Adapter files number them."""
    cfg = unet.config
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = cfg.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(cfg.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = cfg.block_out_channels[int(name[len("down_blocks.")])]
        yield key_id, hidden
        key_id += 2


def write_tiny_ip_adapter(path: PathLike, layout: str = "plain", seed: int = 3, unet: Any = None, std: float = 0.3,
                          encoder: Dict[str, Any] = None, dim: int = 32, heads: int = 1, queries: int = 0) -> Path:
    """An IP-Adapter for `unet` (default the tiny one) taking `encoder`'s widths (default the tiny encoder).
    plus/plus_face: a Resampler of width `dim`, `heads` heads of 64 and `queries` tokens (0: 4 / 6);
    the real ip-adapter-plus_sd15 is dim 768, 12 heads, 16 queries on ViT-H (1280)."""
    import torch

    from .tiny_models import tiny_unet

    unet = unet if unet is not None else tiny_unet(0)
    enc = encoder or TINY_CLIP_VISION
    cross = int(unet.config.cross_attention_dim)
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(shape, generator=g) * std  # noqa: E731
    sd: Dict[str, Any] = {}
    if layout == "plain":
        tokens = 4
        sd.update({"image_proj.proj.weight": r(tokens * cross, enc["projection_dim"]), "image_proj.proj.bias": r(tokens * cross),
                   "image_proj.norm.weight": 1 + r(cross), "image_proj.norm.bias": r(cross)})
    elif layout in ("plus", "plus_face"):
        queries, inner = queries or (4 if layout == "plus" else 6), 64 * heads  # diffusers reads heads = inner / 64
        sd.update({"image_proj.latents": r(1, queries, dim), "image_proj.proj_in.weight": r(dim, enc["hidden_size"]),
                   "image_proj.proj_in.bias": r(dim), "image_proj.proj_out.weight": r(cross, dim), "image_proj.proj_out.bias": r(cross),
                   "image_proj.norm_out.weight": 1 + r(cross), "image_proj.norm_out.bias": r(cross)})
        for i in range(4):  # diffusers' Resampler has depth 4
            pre = f"image_proj.layers.{i}."
            sd.update({pre + "0.norm1.weight": 1 + r(dim), pre + "0.norm1.bias": r(dim), pre + "0.norm2.weight": 1 + r(dim),
                       pre + "0.norm2.bias": r(dim), pre + "0.to_q.weight": r(inner, dim), pre + "0.to_kv.weight": r(2 * inner, dim),
                       pre + "0.to_out.weight": r(dim, inner), pre + "1.0.weight": 1 + r(dim), pre + "1.0.bias": r(dim),
                       pre + "1.1.weight": r(4 * dim, dim), pre + "1.3.weight": r(dim, 4 * dim)})
    else:
        raise ValueError(f"layout must be plain, plus or plus_face, not {layout!r}")
    for key_id, hidden in _cross_layers(unet):
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = r(hidden, cross)
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = r(hidden, cross)
    return _save(sd, path)


def write_sdxl_ip_adapter(path: PathLike, seed: int = 4) -> Path:
    import torch

    g = torch.Generator().manual_seed(seed)
    sd = {"image_proj.proj.weight": torch.randn((8, 4), generator=g), "image_proj.proj.bias": torch.randn((8,), generator=g),
          "image_proj.norm.weight": torch.ones(2), "image_proj.norm.bias": torch.zeros(2)}
    for key_id in (1, 3):
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn((640, 2048), generator=g) * 0.01
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn((640, 2048), generator=g) * 0.01
    return _save(sd, path)
