"""Depth Anything V2 through transformers: loading a save_pretrained folder or the original-layout
.pth (converted in memory: same weights, transformers names, fused qkv split), and running it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from ..errors import ModelFileError
from ..imaging.images import to_uint8
from . import annotators
from .detectors import LOAD_ERRORS

log = logging.getLogger("zrealism")



# Depth Anything V2's image processor settings (the -hf repo's preprocessor_config.json), used
# when a folder has no preprocessor_config.json of its own.
PROCESSOR_DEFAULTS = dict(
    do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
    resample=3, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
)


def depth_anything_v2_small_config():
    """transformers config of Depth Anything V2 Small (as in depth-anything/Depth-Anything-V2-Small-hf)."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
        out_indices=[3, 6, 9, 12], reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=384, patch_size=14, fusion_hidden_size=64,
        neck_hidden_sizes=[48, 96, 192, 384], head_hidden_size=32, depth_estimation_type="relative",
    )


def load_folder(folder: Path, device: str):
    from safetensors import SafetensorError
    from transformers import DepthAnythingForDepthEstimation, DPTImageProcessor

    try:
        # use_safetensors: never unpickle; local_files_only: never the network.
        model = DepthAnythingForDepthEstimation.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
        if (folder / "preprocessor_config.json").is_file():
            processor = DPTImageProcessor.from_pretrained(str(folder), local_files_only=True)
        else:
            processor = DPTImageProcessor(**PROCESSOR_DEFAULTS)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ModelFileError(
            f"Depth Anything folder {folder} could not be loaded ({type(exc).__name__}: {exc}). It must hold config.json "
            f"and model.safetensors from https://huggingface.co/{annotators.DEPTH_ANYTHING_REPO} (the -hf repo, transformers "
            "layout); re-download them if they are damaged."
        ) from exc
    return model.to(device).train(False), processor


def load_original(path: Path, device: str):
    """depth_anything_v2_vits.pth (the original repo's layout, which comfyui_controlnet_aux downloads)
    -> transformers DepthAnythingForDepthEstimation, converted in memory (nothing is written)."""
    import torch
    from transformers import DepthAnythingForDepthEstimation

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "pretrained.cls_token" not in state:
            raise ValueError("not a Depth Anything V2 state dict (no pretrained.cls_token)")
        config = _config_from_original(state)
        hf_state = _original_to_transformers(state, config.backbone_config.num_hidden_layers)
        with torch.device("meta"):  # no random init of weights that are loaded right after
            model = DepthAnythingForDepthEstimation(config)
        hf_state = rename_for_model(hf_state, set(model.state_dict()))
        # The mask token is only used in training; tolerate a file saved without it.
        hf_state.setdefault("backbone.embeddings.mask_token", torch.zeros_like(model.backbone.embeddings.mask_token, device="cpu"))
        missing, unexpected = model.load_state_dict(hf_state, strict=False, assign=True)
    except LOAD_ERRORS + (AttributeError, TypeError) as exc:
        raise ModelFileError(
            f"{path} could not be read as Depth Anything V2 ({type(exc).__name__}: {exc}). Use the file from "
            f"https://huggingface.co/{annotators.DEPTH_ANYTHING_ORIGINAL.repo_id}, or the transformers folder from "
            f"https://huggingface.co/{annotators.DEPTH_ANYTHING_REPO}."
        ) from exc
    if missing:  # a weight left at random init would give a silently wrong depth map
        raise ModelFileError(f"{path} lacks {len(missing)} Depth Anything weights (e.g. {missing[:3]}); re-download it.")
    if unexpected:
        log.warning("%s: ignored %d unexpected keys (e.g. %s)", path, len(unexpected), unexpected[:3])
    from transformers import DPTImageProcessor

    return model.to(device).train(False), DPTImageProcessor(**PROCESSOR_DEFAULTS)


def _config_from_original(state: Dict[str, Any]):
    """transformers config matching an original Depth Anything V2 state dict (vits/vitb/vitl), read off its shapes."""
    from transformers import DepthAnythingConfig, Dinov2Config

    hidden = int(state["pretrained.cls_token"].shape[-1])
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("pretrained.blocks."))
    mlp = int(state["pretrained.blocks.0.mlp.fc1.weight"].shape[0])
    # Depth Anything V2 taps these encoder layers (1-based): vits/vitb [3,6,9,12], vitl [5,12,18,24].
    out_indices = [5, 12, 18, 24] if layers == 24 else [round(layers * k / 4) for k in range(1, 5)]
    patch = int(state["pretrained.patch_embed.proj.weight"].shape[-1])
    tokens = int(state["pretrained.pos_embed"].shape[1]) - 1
    backbone = Dinov2Config(
        image_size=int(round(tokens ** 0.5)) * patch, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64), mlp_ratio=mlp // hidden, out_indices=out_indices,
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hidden, patch_size=patch,
        fusion_hidden_size=int(state["depth_head.scratch.layer1_rn.weight"].shape[0]),
        neck_hidden_sizes=[int(state[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)],
        head_hidden_size=int(state["depth_head.scratch.output_conv2.0.weight"].shape[0]),
        depth_estimation_type="relative",
    )


def depth_anything_key_map(num_layers: int):
    """(original name, transformers name) pairs; the qkv split is done separately. Names as in
    transformers' convert_depth_anything_to_hf.py (the same for V1 and V2)."""
    pairs = [
        ("pretrained.cls_token", "backbone.embeddings.cls_token"),
        ("pretrained.mask_token", "backbone.embeddings.mask_token"),
        ("pretrained.pos_embed", "backbone.embeddings.position_embeddings"),
        ("pretrained.patch_embed.proj.weight", "backbone.embeddings.patch_embeddings.projection.weight"),
        ("pretrained.patch_embed.proj.bias", "backbone.embeddings.patch_embeddings.projection.bias"),
        ("pretrained.norm.weight", "backbone.layernorm.weight"),
        ("pretrained.norm.bias", "backbone.layernorm.bias"),
    ]
    block = {"ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1", "norm1": "norm1", "norm2": "norm2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "attn.proj": "attention.output.dense"}
    for i in range(num_layers):
        for src, dst in block.items():
            suffixes = [""] if src.endswith("gamma") else [".weight", ".bias"]
            for sfx in suffixes:
                pairs.append((f"pretrained.blocks.{i}.{src}{sfx}", f"backbone.encoder.layer.{i}.{dst}{sfx}"))
    for i in range(4):
        for sfx in (".weight", ".bias"):
            pairs.append((f"depth_head.projects.{i}{sfx}", f"neck.reassemble_stage.layers.{i}.projection{sfx}"))
            if i != 2:  # the third reassemble stage keeps its size: no resize layer
                pairs.append((f"depth_head.resize_layers.{i}{sfx}", f"neck.reassemble_stage.layers.{i}.resize{sfx}"))
        pairs.append((f"depth_head.scratch.layer{i + 1}_rn.weight", f"neck.convs.{i}.weight"))
    for i in range(1, 5):  # refinenet4 is the first fusion layer
        j = 4 - i
        for sfx in (".weight", ".bias"):
            pairs.append((f"depth_head.scratch.refinenet{i}.out_conv{sfx}", f"neck.fusion_stage.layers.{j}.projection{sfx}"))
            for u in (1, 2):
                for c in (1, 2):
                    pairs.append((f"depth_head.scratch.refinenet{i}.resConfUnit{u}.conv{c}{sfx}",
                                  f"neck.fusion_stage.layers.{j}.residual_layer{u}.convolution{c}{sfx}"))
    for sfx in (".weight", ".bias"):
        pairs += [(f"depth_head.scratch.output_conv1{sfx}", f"head.conv1{sfx}"),
                  (f"depth_head.scratch.output_conv2.0{sfx}", f"head.conv2{sfx}"),
                  (f"depth_head.scratch.output_conv2.2{sfx}", f"head.conv3{sfx}")]
    return pairs


# transformers 5 renamed Dinov2's attention weights; checkpoints on the hub keep the old names
# (transformers converts them when it loads a file, but not in load_state_dict).
_ATTENTION_RENAMES = (
    ("attention.attention.query.", "attention.q_proj."), ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."), ("attention.output.dense.", "attention.o_proj."),
)


def rename_for_model(state: Dict[str, Any], model_keys, *, reverse: bool = False) -> Dict[str, Any]:
    """Map hub-style (transformers 4) Depth Anything names to those `model_keys` uses, or back (reverse=True)."""
    out = {}
    for key, value in state.items():
        for old, new in _ATTENTION_RENAMES:
            src, dst = (new, old) if reverse else (old, new)
            if src in key:
                candidate = key.replace(src, dst)
                if reverse or (key not in model_keys and candidate in model_keys):
                    key = candidate
                break
        out[key] = value
    return out


def _original_to_transformers(state: Dict[str, Any], num_layers: int) -> Dict[str, Any]:
    out = {}
    for src, dst in depth_anything_key_map(num_layers):
        if src in state:
            out[dst] = state[src]
    for i in range(num_layers):  # the original fuses query/key/value into one qkv projection
        w, b = state[f"pretrained.blocks.{i}.attn.qkv.weight"], state[f"pretrained.blocks.{i}.attn.qkv.bias"]
        n = w.shape[0] // 3
        for k, name in enumerate(("query", "key", "value")):
            out[f"backbone.encoder.layer.{i}.attention.attention.{name}.weight"] = w[k * n:(k + 1) * n]
            out[f"backbone.encoder.layer.{i}.attention.attention.{name}.bias"] = b[k * n:(k + 1) * n]
    return out


def run(model, processor, rgb: np.ndarray, resolution: int) -> np.ndarray:
    import torch

    h, w = rgb.shape[:2]
    dh, dw = _detect_size(h, w, resolution, multiple=14)
    # Explicit size: `resolution` means the short side for every detector (controlnet-aux's convention).
    inputs = processor(
        images=to_uint8(rgb), size={"height": dh, "width": dw}, keep_aspect_ratio=False, return_tensors="pt",
    )
    device = next(model.parameters()).device
    pixels = inputs["pixel_values"].to(device=device, dtype=next(model.parameters()).dtype)
    with torch.inference_mode():
        pred = model(pixel_values=pixels).predicted_depth  # (1, dh, dw) relative inverse depth
        pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)
    return pred[0, 0].cpu().numpy()


def _detect_size(h: int, w: int, resolution: int, *, multiple: int) -> Tuple[int, int]:
    scale = resolution / min(h, w)
    return (max(multiple, int(round(h * scale / multiple)) * multiple),
            max(multiple, int(round(w * scale / multiple)) * multiple))
