"""ZRealism_IPAdapter: an image prompt (SD1.5 IP-Adapter + CLIP ViT-H/14) on a Z-Realism pipe
(core: zrealism_core.adapters.views.with_ip_adapter, zrealism_core.adapters.ip_adapter)."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge
from ..zrealism_core.errors import ModelFileError

NONE = "none"
IPADAPTER_FOLDER = "ipadapter"
CLIP_VISION_FOLDER = "clip_vision"


class ZRealism_IPAdapter:
    DESCRIPTION = (
        "Image prompt: keep the character's face, palette and identity from a reference image (usually the "
        "prepared drawing) with an SD1.5 IP-Adapter (ip-adapter, ip-adapter-plus, ip-adapter-plus-face from "
        "models/ipadapter) and the CLIP ViT-H/14 image encoder from models/clip_vision. Works in the still "
        "sampler and AnimateDiff Fuse. The output is a light view of the pipe: the adapter is active only in "
        "jobs on this pipe; weight 0 switches it off entirely."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("ZREALISM_PIPE",)
    RETURN_NAMES = ("pipe",)
    OUTPUT_TOOLTIPS = ("The same pipeline plus this image prompt; connect it to the sampler or AnimateDiff Fuse.",)

    @classmethod
    def INPUT_TYPES(cls):
        bridge.register_model_folder(IPADAPTER_FOLDER)
        return {
            "required": {
                "pipe": ("ZREALISM_PIPE", {"tooltip": "The pipeline from Z-Realism Model Loader (or a LoRA Loader)."}),
                "ipadapter": (bridge.list_models(IPADAPTER_FOLDER) or [NONE], {
                    "tooltip": "An SD1.5 IP-Adapter from models/ipadapter: ip-adapter_sd15, ip-adapter-plus_sd15 "
                               "(more detail) or ip-adapter-plus-face_sd15 (the face). SDXL and FaceID adapters are refused."}),
                "clip_vision": (bridge.list_models(CLIP_VISION_FOLDER) or [NONE], {
                    "tooltip": "The image encoder from models/clip_vision: CLIP ViT-H/14 (CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors). "
                               "ViT-bigG (SDXL) does not fit SD1.5 adapters."}),
                "image": ("IMAGE", {"tooltip": "The reference image (usually the prepared drawing). The first image of a batch is used."}),
                "weight": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 2.0, "step": 0.05,
                                     "tooltip": "How strongly the reference steers the result. 0 = off (exactly the pipe's result without it)."}),
                "start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                    "tooltip": "Fraction of the executed steps after which the image prompt starts acting."}),
                "end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                  "tooltip": "Fraction of the executed steps after which the image prompt stops acting (must be above start)."}),
            }
        }

    def apply(self, pipe: Any, ipadapter: str, clip_vision: str, image: Any, weight: float = 0.6,
              start: float = 0.0, end: float = 1.0) -> Tuple[Any]:
        from ..zrealism_core.adapters.ip_adapter import CV_HINT, IP_HINT

        bridge.register_model_folder(IPADAPTER_FOLDER)  # ComfyUI has no ipadapter folder of its own (IPAdapter_plus adds it)
        ip_path = bridge.require_model(IPADAPTER_FOLDER, ipadapter, "IP-Adapter", IP_HINT)
        if clip_vision in (NONE, "", None):
            raise ModelFileError(f"The IP-Adapter {ipadapter} needs its image encoder: choose a clip_vision file. {CV_HINT}")
        cv_path = bridge.require_model(CLIP_VISION_FOLDER, clip_vision, "clip_vision file", CV_HINT)
        ref = bridge.image_to_numpy(image)[0]
        return (pipe.with_ip_adapter(ip_path, cv_path, ref, weight=float(weight), start=float(start), end=float(end)),)


NODE_CLASS_MAPPINGS = {"ZRealism_IPAdapter": ZRealism_IPAdapter}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_IPAdapter": "Z-Realism IP-Adapter (image prompt)"}
