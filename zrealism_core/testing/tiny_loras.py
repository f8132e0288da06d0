"""Tiny LoRA files for the tiny SD1.5 models (tiny_models), in the layouts users download.

    write_kohya_lora(path)      kohya/A1111: lora_unet_*/lora_te_* .lora_down/.lora_up + .alpha,
                                including conv layers (LyCORIS LoCon style)
    write_peft_lora(path)       diffusers/peft: unet.<module>.lora_A/lora_B, text_encoder.<module>...
    write_loha_lora(path)       LyCORIS LoHa: hada_w1_a/b, hada_w2_a/b + alpha
    write_sdxl_lora(path)       an SDXL-style kohya LoRA (lora_te1_/lora_te2_, cross-attention 2048), to be rejected
The factors are random (seeded) and large enough that strength 1 visibly changes a tiny model's output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, Tuple, Union

PathLike = Union[str, Path]

UNET_LAYERS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v",
               "attn2.to_out.0", "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out")
TE_LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2")


def _targets(unet: Any = None, text_encoder: Any = None, conv: bool = True) -> Iterator[Tuple[str, str, Tuple[int, ...]]]:
    """(target, module name, weight shape) of the layers a typical SD1.5 LoRA trains."""
    from .tiny_models import tiny_text_encoder, tiny_unet

    unet = unet if unet is not None else tiny_unet(0)
    text_encoder = text_encoder if text_encoder is not None else tiny_text_encoder(0)
    for name, mod in unet.named_modules():
        w = getattr(mod, "weight", None)
        if w is None or w.dim() < 2:
            continue
        if name.endswith(UNET_LAYERS) or (conv and name.endswith(("conv1", "conv2")) and "resnets" in name):
            yield "unet", name, tuple(w.shape)
    for name, mod in text_encoder.named_modules():
        w = getattr(mod, "weight", None)
        if w is not None and w.dim() == 2 and name.endswith(TE_LAYERS):
            yield "text_encoder", name, tuple(w.shape)


def _file_name(target: str, name: str) -> str:
    """A layer's name as real LoRA files spell it: the text encoder's under `text_model.` (transformers
    >= 5.6 dropped that level from its module names; kohya, A1111 and diffusers files keep it)."""
    if target == "text_encoder" and not name.startswith("text_model."):
        return "text_model." + name
    return name


def _factors(shape: Tuple[int, ...], rank: int, gen: Any, std: float) -> Tuple[Any, Any]:
    import torch

    out_f, in_shape = shape[0], shape[1:]
    if len(shape) == 4:  # conv: down is a conv of the layer's kernel, up a 1x1 conv
        down = torch.randn((rank,) + tuple(in_shape), generator=gen) * std
        up = torch.randn((out_f, rank, 1, 1), generator=gen) * std
    else:
        down = torch.randn((rank, in_shape[0]), generator=gen) * std
        up = torch.randn((out_f, rank), generator=gen) * std
    return down, up


def _save(sd: Dict[str, Any], path: PathLike) -> Path:
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(p))
    else:
        import torch

        torch.save(sd, str(p))
    return p


def kohya_state_dict(unet: Any = None, text_encoder: Any = None, rank: int = 4, alpha: float = 2.0, seed: int = 7,
                     std: float = 0.3, conv: bool = True) -> Dict[str, Any]:
    """kohya keys for the given (or the tiny) models; `conv` adds the resnet convs (LoCon)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd: Dict[str, Any] = {}
    for target, name, shape in _targets(unet, text_encoder, conv=conv):
        key = ("lora_unet_" if target == "unet" else "lora_te_") + _file_name(target, name).replace(".", "_")
        down, up = _factors(shape, rank, gen, std)
        sd[key + ".lora_down.weight"], sd[key + ".lora_up.weight"] = down, up
        sd[key + ".alpha"] = torch.tensor(float(alpha))
    return sd


def write_kohya_lora(path: PathLike, unet: Any = None, text_encoder: Any = None, rank: int = 4, alpha: float = 2.0,
                     seed: int = 7, conv: bool = True, std: float = 0.3) -> Path:
    """A kohya/A1111-format SD1.5 LoRA (UNet attention + conv layers, text encoder) for the tiny models
    (or for `unet` / `text_encoder`, e.g. the real SD1.5 shapes in the benchmark)."""
    return _save(kohya_state_dict(unet, text_encoder, rank, alpha, seed, std, conv), path)


def write_peft_lora(path: PathLike, unet: Any = None, text_encoder: Any = None, rank: int = 4, seed: int = 8,
                    std: float = 0.3) -> Path:
    """A diffusers/peft-format LoRA (`unet.<module>.lora_A.weight` / `lora_B`), attention layers only."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd: Dict[str, Any] = {}
    for target, name, shape in _targets(unet, text_encoder, conv=False):
        down, up = _factors(shape, rank, gen, std)
        key = f"{target}.{_file_name(target, name)}"
        sd[f"{key}.lora_A.weight"], sd[f"{key}.lora_B.weight"] = down, up
    return _save(sd, path)


def write_loha_lora(path: PathLike, unet: Any = None, rank: int = 4, alpha: float = 4.0, seed: int = 9, std: float = 0.3) -> Path:
    """A LyCORIS LoHa for the tiny UNet's linear layers."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    sd: Dict[str, Any] = {}
    for target, name, shape in _targets(unet, None, conv=False):
        if target != "unet":
            continue
        key = "lora_unet_" + name.replace(".", "_")
        for i in (1, 2):
            sd[f"{key}.hada_w{i}_a"] = torch.randn((shape[0], rank), generator=gen) * std
            sd[f"{key}.hada_w{i}_b"] = torch.randn((rank, shape[1]), generator=gen) * std
        sd[key + ".alpha"] = torch.tensor(float(alpha))
    return _save(sd, path)


def write_sdxl_lora(path: PathLike, rank: int = 4, seed: int = 10) -> Path:
    """What an SDXL kohya LoRA looks like (two text encoders, sgm block names, cross-attention 2048)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    base = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    sd = {
        base + ".lora_down.weight": torch.randn((rank, 2048), generator=gen),
        base + ".lora_up.weight": torch.randn((640, rank), generator=gen),
        base + ".alpha": torch.tensor(float(rank)),
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.randn((rank, 768), generator=gen),
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.randn((768, rank), generator=gen),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.randn((rank, 1280), generator=gen),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.randn((1280, rank), generator=gen),
    }
    return _save(sd, path)
