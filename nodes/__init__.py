"""ComfyUI adapters: one small module per node. Everything ComfyUI-specific goes through .bridge."""
from __future__ import annotations

import importlib
import logging

log = logging.getLogger("zrealism")

_NODE_MODULES = [
    "load_image_folder",
    "white_background_prep",
    "heuristic_analyzer",
    "fidelity_evaluator",
    "model_loader",
    "lora_loader",
    "ip_adapter",
    "dual_controlnet_sampler",
    "control_maps",
    "motion_loader",
    "animatediff_fuse",
    "save_video",
]

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
LOAD_ERRORS: dict = {}

for _name in _NODE_MODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __name__)
    except Exception as exc:  # one broken node must not take ComfyUI (or the other nodes) down
        LOAD_ERRORS[_name] = exc
        continue
    NODE_CLASS_MAPPINGS.update(_mod.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_mod.NODE_DISPLAY_NAME_MAPPINGS)

if LOAD_ERRORS:
    log.warning(
        "Z-Realism: %d node module(s) failed to load: %s",
        len(LOAD_ERRORS),
        "; ".join(f"{k}: {type(v).__name__}: {v}" for k, v in LOAD_ERRORS.items()),
    )
