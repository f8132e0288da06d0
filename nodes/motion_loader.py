"""ZRealism_MotionModelLoader: AnimateDiff motion module (+ optional motion LoRA, SparseCtrl) -> ZREALISM_MOTION
(core: zrealism_core.models.motion)."""
from __future__ import annotations

from typing import Any, List, Tuple

from . import bridge
from ..zrealism_core.errors import ModelFileError
from ..zrealism_core.models.motion import (
    DOWNLOAD_HINT, MOTION_FOLDER, MOTION_LORA_FOLDER, SPARSECTRL_FOLDER, MotionModel,
    load_motion_adapter, load_motion_lora, load_sparsectrl,
)

NONE = "none"


def register_folders() -> None:
    """AnimateDiff-Evolved users already have these; register them for everyone else."""
    bridge.register_model_folder(MOTION_FOLDER)
    bridge.register_model_folder(MOTION_LORA_FOLDER)


def _resolve(folder: str, name: str, what: str) -> str:
    if name.startswith(bridge.DIFFUSERS_PREFIX):
        path = bridge.resolve_diffusers_folder(folder, name, marker="config.json")
    else:
        path = bridge.resolve_model(folder, name)
    if not path:
        where = ", ".join(bridge.folder_locations(folder)) or f"models/{folder}"
        raise ModelFileError(
            f"{what} {name!r} was not found (looked in: {where}). Put the file there and refresh; "
            f"download from {DOWNLOAD_HINT}."
        )
    return path


def motion_choices() -> List[str]:
    register_folders()
    folders = bridge.diffusers_folders(MOTION_FOLDER, marker="config.json", class_name="MotionAdapter")
    inside = tuple(f[len(bridge.DIFFUSERS_PREFIX):] + "/" for f in folders)
    # a diffusers folder's weights file is not a motion module of its own
    files = [n for n in bridge.list_models(MOTION_FOLDER) if not n.startswith(inside)] if inside else bridge.list_models(MOTION_FOLDER)
    return (files + folders) or [NONE]


class ZRealism_MotionModelLoader:
    DESCRIPTION = (
        "Load an AnimateDiff SD1.5 motion module for Z-Realism AnimateDiff Fuse, offline. Files come from "
        "models/animatediff_models (the folder AnimateDiff-Evolved uses): mm_sd_v15_v2.ckpt, v3_sd15_mm.ckpt, "
        "mm_sd_v15.ckpt or a diffusers MotionAdapter folder. Optionally adds a motion LoRA from "
        "models/animatediff_motion_lora (camera moves such as v2_lora_ZoomIn; needs the peft package) and an RGB "
        "SparseCtrl model (diffusers folder in models/controlnet) that makes the still a keyframe."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("ZREALISM_MOTION",)
    RETURN_NAMES = ("motion",)
    OUTPUT_TOOLTIPS = ("The motion model (with LoRA/SparseCtrl if chosen); connect it to Z-Realism AnimateDiff Fuse.",)

    @classmethod
    def INPUT_TYPES(cls):
        register_folders()
        return {
            "required": {
                "motion_model": (motion_choices(), {
                    "tooltip": "AnimateDiff SD1.5 motion module from models/animatediff_models (download from "
                               "huggingface.co/guoyww/animatediff, e.g. mm_sd_v15_v2.ckpt). Diffusers folders show as "
                               "'[diffusers] name'."}),
                "motion_lora": ([NONE] + bridge.list_models(MOTION_LORA_FOLDER), {
                    "default": NONE,
                    "tooltip": "Optional motion LoRA from models/animatediff_motion_lora (e.g. v2_lora_ZoomIn.ckpt, "
                               "v2_lora_PanLeft.ckpt; for v2 motion modules). 'none' = no LoRA. Needs peft."}),
                "motion_lora_strength": ("FLOAT", {
                    "default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                    "tooltip": "How strongly the motion LoRA's camera move applies (0 = off, 1 = as trained)."}),
                "sparsectrl": ([NONE] + bridge.diffusers_folders(SPARSECTRL_FOLDER, marker="config.json", class_name="SparseControlNetModel"), {
                    "default": NONE,
                    "tooltip": "Optional RGB SparseCtrl model (diffusers folder in models/controlnet, e.g. "
                               "guoyww/animatediff-sparsectrl-rgb): the still becomes keyframe 0 (and the last frame when "
                               "looping) instead of guiding every frame through the depth/pose ControlNets. Clips are "
                               "then limited to the motion model's 32-frame window."}),
            }
        }

    def load(self, motion_model: str, motion_lora: str = NONE, motion_lora_strength: float = 1.0,
             sparsectrl: str = NONE) -> Tuple[Any]:
        register_folders()
        if motion_model in (NONE, "", None):
            where = ", ".join(bridge.folder_locations(MOTION_FOLDER)) or f"models/{MOTION_FOLDER}"
            raise ModelFileError(
                f"no motion model found in {where}. Download an AnimateDiff SD1.5 motion module (e.g. mm_sd_v15_v2.ckpt) "
                f"from {DOWNLOAD_HINT}, put it there and refresh."
            )
        path = _resolve(MOTION_FOLDER, motion_model, "motion model")
        model = MotionModel(adapter=load_motion_adapter(path), path=path)
        if motion_lora not in (NONE, "", None) and float(motion_lora_strength) > 0:
            model.loras.append(load_motion_lora(_resolve(MOTION_LORA_FOLDER, motion_lora, "motion LoRA"), motion_lora_strength))
        if sparsectrl not in (NONE, "", None):
            model.sparsectrl = load_sparsectrl(_resolve(SPARSECTRL_FOLDER, sparsectrl, "SparseCtrl model"))
        return (model,)


NODE_CLASS_MAPPINGS = {"ZRealism_MotionModelLoader": ZRealism_MotionModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_MotionModelLoader": "Z-Realism Motion Model Loader (AnimateDiff)"}
