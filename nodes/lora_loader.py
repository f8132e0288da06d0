"""ZRealism_LoraLoader: add an SD1.5 LoRA to a Z-Realism pipe (core: zrealism_core.adapters.views.with_lora)."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge

NONE = "none"
LORA_FOLDER = "loras"


class ZRealism_LoraLoader:
    DESCRIPTION = (
        "Add a LoRA from models/loras to a Z-Realism pipe (kohya/A1111 SD1.5 LoRAs incl. their text-encoder part, "
        "LyCORIS LoCon/LoHa/LoKr, diffusers/peft files). Chain several. The output is a light view: the loaded "
        "models are shared, the LoRA is applied only while a job on this pipe runs (still and clip) and removed "
        "after, so other graphs using the pipe without it are unaffected. A LoRA for SDXL or another model is refused."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("ZREALISM_PIPE",)
    RETURN_NAMES = ("pipe",)
    OUTPUT_TOOLTIPS = ("The same pipeline plus this LoRA; connect it to the sampler, AnimateDiff Fuse or another LoRA Loader.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pipe": ("ZREALISM_PIPE", {"tooltip": "The pipeline from Z-Realism Model Loader (or another LoRA Loader / IP-Adapter)."}),
                "lora_name": (bridge.list_models(LORA_FOLDER) or [NONE], {
                    "tooltip": "An SD1.5 LoRA from models/loras (.safetensors preferred; .pt/.ckpt are read without unpickling code)."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05,
                                       "tooltip": "How strongly the LoRA applies (UNet and text encoder). 0 = off (the result is exactly the pipe's without it)."}),
            }
        }

    def load(self, pipe: Any, lora_name: str, strength: float = 1.0) -> Tuple[Any]:
        path = bridge.require_model(LORA_FOLDER, lora_name, "LoRA", "Put an SD1.5 LoRA file there and refresh.")
        return (pipe.with_lora(path, float(strength)),)


NODE_CLASS_MAPPINGS = {"ZRealism_LoraLoader": ZRealism_LoraLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_LoraLoader": "Z-Realism LoRA Loader"}
