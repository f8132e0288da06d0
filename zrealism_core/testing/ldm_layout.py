"""Converters from diffusers state dicts to the original LDM keys (single-file checkpoints), config-driven
so they work for any block layout, the tiny one and the real SD1.5 one:
    unet_to_ldm, vae_to_ldm, text_encoder_to_ldm, controlnet_to_ldm, ldm_checkpoint
diffusers ships only the other direction (LDM -> diffusers); these are its exact inverse, so
`from_single_file` reads what we write bit-exactly.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ..models.ldm_keys import down_path_to_ldm, unet_key_to_ldm


def unet_to_ldm(state_dict: Mapping[str, Any], config: Mapping[str, Any], prefix: str = "model.diffusion_model.") -> Dict[str, Any]:
    """diffusers UNet2DConditionModel state dict -> original LDM keys (`model.diffusion_model.*`)."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        new = unet_key_to_ldm(key, config)
        if new is None:
            raise KeyError(f"no LDM name for UNet key {key!r}")
        out[prefix + new] = value
    return out


def controlnet_to_ldm(state_dict: Mapping[str, Any], config: Mapping[str, Any], prefix: str = "control_model.") -> Dict[str, Any]:
    """diffusers ControlNetModel state dict -> original layout (input_hint_block, zero_convs, middle_block_out)."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        new = down_path_to_ldm(key, config)
        if new is None:
            if parts[0] == "controlnet_down_blocks":
                new = f"zero_convs.{parts[1]}.0.{parts[-1]}"
            elif parts[0] == "controlnet_mid_block":
                new = f"middle_block_out.0.{parts[-1]}"
            elif parts[0] == "controlnet_cond_embedding":
                if parts[1] == "conv_in":
                    new = f"input_hint_block.0.{parts[-1]}"
                elif parts[1] == "conv_out":
                    new = f"input_hint_block.14.{parts[-1]}"  # fixed index in the original Sequential
                elif parts[1] == "blocks":
                    new = f"input_hint_block.{2 * (int(parts[2]) + 1)}.{parts[-1]}"
        if new is None:
            raise KeyError(f"no LDM name for ControlNet key {key!r}")
        out[prefix + new] = value
    return out


def vae_to_ldm(state_dict: Mapping[str, Any], config: Mapping[str, Any], prefix: str = "first_stage_model.") -> Dict[str, Any]:
    """diffusers AutoencoderKL state dict -> original VAE keys (attention q/k/v as 1x1 convs)."""
    n_up = len(config["up_block_types"])
    attn_names = {
        "group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
    }
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        side = parts[0]  # encoder / decoder / quant_conv / post_quant_conv
        new: Optional[str] = None
        if side in ("quant_conv", "post_quant_conv"):
            new = key
        elif parts[1] in ("conv_in", "conv_out"):
            new = key
        elif parts[1] == "conv_norm_out":
            new = f"{side}.norm_out.{parts[-1]}"
        elif parts[1] in ("down_blocks", "up_blocks"):
            i, kind = int(parts[2]), parts[3]
            ldm_i = i if side == "encoder" else n_up - 1 - i  # the decoder counts up blocks backwards
            word = "down" if side == "encoder" else "up"
            if kind == "resnets":
                rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{side}.{word}.{ldm_i}.block.{parts[4]}.{rest}"
            elif kind in ("downsamplers", "upsamplers"):
                new = f"{side}.{word}.{ldm_i}.{'downsample' if word == 'down' else 'upsample'}.conv.{parts[-1]}"
        elif parts[1] == "mid_block":
            kind, idx = parts[2], int(parts[3])
            if kind == "resnets":
                rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{side}.mid.block_{idx + 1}.{rest}"
            elif kind == "attentions":
                sub = ".".join(parts[4:-1])
                new = f"{side}.mid.attn_1.{attn_names[sub]}.{parts[-1]}"
                if value.ndim == 2:  # linear -> 1x1 conv, as in the original files
                    value = value[:, :, None, None]
        if new is None:
            raise KeyError(f"no LDM name for VAE key {key!r}")
        out[prefix + new] = value
    return out


def text_encoder_to_ldm(state_dict: Mapping[str, Any], prefix: str = "cond_stage_model.transformer.") -> Dict[str, Any]:
    """CLIPTextModel state dict -> `cond_stage_model.transformer.text_model.*` (transformers >= 5.6
    dropped the `text_model.` level from the state dict; the files keep it)."""
    out: Dict[str, Any] = {}
    for key, value in state_dict.items():
        if key.endswith("position_ids"):
            continue
        name = key if key.startswith("text_model.") else "text_model." + key
        out[prefix + name] = value
    return out


def ldm_checkpoint(unet: Any, vae: Any, text_encoder: Any) -> Dict[str, Any]:
    """One original-layout state dict from the three diffusers/transformers models."""
    sd: Dict[str, Any] = {}
    sd.update(unet_to_ldm(unet.state_dict(), unet.config))
    sd.update(vae_to_ldm(vae.state_dict(), vae.config))
    sd.update(text_encoder_to_ldm(text_encoder.state_dict()))
    return sd
