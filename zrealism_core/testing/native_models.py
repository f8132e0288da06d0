"""Real-SD1.5-shaped random-weight models that ComfyUI's own loaders accept: write_native_model_set(models)
(the integration test's native-sampler graph: one UNet level) and write_sd15_model_set(models) (the full
SD1.5 UNet and ControlNets, for the benchmark against ComfyUI's native graph) -> NativeModelSet paths."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from .ldm_layout import controlnet_to_ldm, ldm_checkpoint
from .tiny_loras import write_kohya_lora
from .tiny_models import SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG, PathLike, _save, _seeded, reinit_zero_convs


# ComfyUI's CheckpointLoaderSimple recognises SD1.5 by the UNet's width (320), cross-attention width
# (768) and conv proj_in; the number of levels and blocks is read from the file. So one 320-wide level
# with one block per side is SD1.5 to ComfyUI. Its VAE and CLIP-L text tower are built from fixed
# configs, so those two are written at their real sizes (random weights).
NATIVE_UNET_CONFIG: Dict[str, Any] = dict(
    block_out_channels=(320,),
    layers_per_block=1,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D",),
    up_block_types=("CrossAttnUpBlock2D",),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)


NATIVE_CONTROLNET_CONFIG: Dict[str, Any] = dict(
    block_out_channels=(320,),
    layers_per_block=1,
    in_channels=4,
    down_block_types=("CrossAttnDownBlock2D",),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,  # the original hint block's widths (16, 32, 96, 256) are diffusers' default
)


@dataclass
class NativeModelSet:
    """Paths written by write_native_model_set (file names as ComfyUI's loaders list them)."""

    checkpoint: Path
    depth_controlnet: Path
    pose_controlnet: Path
    lora: Optional[Path] = None


def native_components(seed: int = 0, unet_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """unet (one 320-wide level, or `unet_config`), vae and text_encoder (real SD1.5 sizes), random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    _seeded(seed)
    unet = UNet2DConditionModel(**(unet_config or NATIVE_UNET_CONFIG)).train(False)
    vae = AutoencoderKL(**SD15_VAE_CONFIG).train(False)
    text_cfg = {k: v for k, v in SD15_TEXT_CONFIG.items() if k not in ("architectures", "model_type")}
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_cfg)).train(False)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder)


def write_native_model_set(models: PathLike, seed: int = 0, prefix: str = "zr-native") -> NativeModelSet:
    """An SD1.5 checkpoint, a depth and a pose ControlNet and a kohya LoRA that ComfyUI's own
    CheckpointLoaderSimple / ControlNetLoader / LoraLoader load, under `models`/checkpoints, /controlnet
    and /loras (about 450 MB, fp16 on disk; a few seconds)."""
    import torch
    from diffusers import ControlNetModel

    root = Path(models)
    c = native_components(seed)
    half = {k: v.half() for k, v in ldm_checkpoint(c["unet"], c["vae"], c["text_encoder"]).items()}
    nets = []
    for i, kind in enumerate(("depth", "openpose"), start=1):
        _seeded(seed + i)
        cn = reinit_zero_convs(ControlNetModel(**NATIVE_CONTROLNET_CONFIG), seed + i).train(False)
        nets.append(_save(controlnet_to_ldm(cn.state_dict(), cn.config), root / "controlnet" / f"{prefix}-{kind}.safetensors"))
    with torch.no_grad():
        lora = write_kohya_lora(root / "loras" / f"{prefix}-lora.safetensors", unet=c["unet"], text_encoder=c["text_encoder"],
                                rank=4, alpha=4.0, seed=seed + 7, std=0.05)
    return NativeModelSet(
        checkpoint=_save(half, root / "checkpoints" / f"{prefix}-sd15.safetensors"),
        depth_controlnet=nets[0],
        pose_controlnet=nets[1],
        lora=lora,
    )


def write_sd15_model_set(models: PathLike, seed: int = 0, prefix: str = "zr-sd15") -> NativeModelSet:
    """The full SD1.5 architecture with random weights as the usual downloads are laid out: one original-layout
    checkpoint under `models`/checkpoints and a depth and a pose ControlNet (built from the UNet, as diffusers'
    from_unet does, zero convs randomised) under /controlnet, fp16 on disk (about 3.4 GB; ~10 GB RAM while
    written). ComfyUI's CheckpointLoaderSimple / ControlNetLoader and our Model Loader load the same files."""
    import torch
    from diffusers import ControlNetModel

    root = Path(models)
    with torch.no_grad():
        c = native_components(seed, SD15_UNET_CONFIG)
        ckpt = _save({k: v.half() for k, v in ldm_checkpoint(c["unet"], c["vae"], c["text_encoder"]).items()},
                     root / "checkpoints" / f"{prefix}.safetensors")
        nets = []
        for i, kind in enumerate(("depth", "openpose"), start=1):
            cn = reinit_zero_convs(ControlNetModel.from_unet(c["unet"]), seed + i).train(False)
            sd = {k: v.half() for k, v in controlnet_to_ldm(cn.state_dict(), cn.config).items()}
            nets.append(_save(sd, root / "controlnet" / f"{prefix}-{kind}.safetensors"))
            del cn, sd
    return NativeModelSet(checkpoint=ckpt, depth_controlnet=nets[0], pose_controlnet=nets[1])
