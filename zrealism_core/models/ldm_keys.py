"""diffusers <-> original (LDM) layer names of the SD1.5 UNet and ControlNet.

The original checkpoints, ComfyUI and some LoRA trainers name UNet layers `input_blocks.4.1.proj_in`;
diffusers names the same layer `down_blocks.1.attentions.0.proj_in`. The mapping depends only on the
UNet config (layers per block, which up blocks have attention), so one function serves the LoRA
reader (LDM-named LoRAs) and the tiny-checkpoint writers in zrealism_core.testing.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


def _resnet_to_ldm(name: str) -> str:
    return (
        name.replace("norm1", "in_layers.0")
        .replace("conv1", "in_layers.2")
        .replace("norm2", "out_layers.0")
        .replace("conv2", "out_layers.3")
        .replace("time_emb_proj", "emb_layers.1")
        .replace("conv_shortcut", "skip_connection")
    )


def down_path_to_ldm(key: str, config: Mapping[str, Any]) -> Optional[str]:
    """Keys shared by UNet and ControlNet: time embedding, conv_in, down blocks, mid block (None otherwise)."""
    lpb = int(config["layers_per_block"])
    parts = key.split(".")
    if key.startswith("time_embedding."):
        return key.replace("time_embedding.linear_1", "time_embed.0").replace("time_embedding.linear_2", "time_embed.2")
    if parts[0] == "conv_in":
        return "input_blocks.0.0." + parts[-1]
    if parts[0] == "down_blocks" and len(parts) > 4:
        b, kind = int(parts[1]), parts[2]
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{1 + b * (lpb + 1) + int(parts[3])}.0.{_resnet_to_ldm(rest)}"
        if kind == "attentions":
            return f"input_blocks.{1 + b * (lpb + 1) + int(parts[3])}.1.{rest}"
        if kind == "downsamplers":  # down_blocks.b.downsamplers.0.conv.weight
            return f"input_blocks.{1 + b * (lpb + 1) + lpb}.0.op.{parts[-1]}"
    if parts[0] == "mid_block" and len(parts) > 3:
        kind, idx, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * idx}.{_resnet_to_ldm(rest)}"
        if kind == "attentions":
            return f"middle_block.1.{rest}"
    return None


def unet_key_to_ldm(key: str, config: Mapping[str, Any]) -> Optional[str]:
    """One diffusers UNet2DConditionModel parameter name -> its LDM name (None if it has none)."""
    new = down_path_to_ldm(key, config)
    if new is not None:
        return new
    lpb = int(config["layers_per_block"])
    parts = key.split(".")
    if parts[0] in ("conv_norm_out", "conv_out"):
        return ("out.0." if parts[0] == "conv_norm_out" else "out.2.") + parts[-1]
    if parts[0] == "up_blocks" and len(parts) > 4:
        b, kind = int(parts[1]), parts[2]
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{b * (lpb + 1) + int(parts[3])}.0.{_resnet_to_ldm(rest)}"
        if kind == "attentions":
            return f"output_blocks.{b * (lpb + 1) + int(parts[3])}.1.{rest}"
        if kind == "upsamplers":
            # the upsampler follows the last layer: slot 2 if that layer has attention, else 1
            slot = 2 if list(config["up_block_types"])[b].startswith("CrossAttn") else 1
            return f"output_blocks.{b * (lpb + 1) + lpb}.{slot}.conv.{parts[-1]}"
    return None


def unet_module_names_to_ldm(unet: Any) -> Dict[str, str]:
    """diffusers module name -> LDM module name for every UNet layer with a weight."""
    out: Dict[str, str] = {}
    for name, mod in unet.named_modules():
        if name and getattr(mod, "weight", None) is not None:
            ldm = unet_key_to_ldm(name + ".weight", unet.config)
            if ldm is not None:
                out[name] = ldm[: -len(".weight")]
    return out
