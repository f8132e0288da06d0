"""Z-Realism core: framework-independent (no ComfyUI imports anywhere in this package).

Public functions are imported lazily, so `import zrealism_core` stays cheap (no torch at import).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# shipped configs and tokenizer files (package data; their paths live in data/__init__.py)
from .data import CLIP_VISION_H14_CONFIG, DATA_DIR, SD15_CONFIG_DIR, TOKENIZER_DIR  # noqa: E402,F401

# public name -> submodule that defines it
_EXPORTS = {
    "ZRealismError": "errors",
    "InputError": "errors",
    "ModelFileError": "errors",
    "CancelledError": "errors",
    "prepare_white_background": "prep",
    "PrepResult": "prep",
    "analyze": "analysis",
    "Analysis": "analysis",
    "RecommendedParams": "analysis",
    "evaluate": "evaluation",
    "evaluate_video": "evaluation",
    "FidelityReport": "evaluation",
    "depth_map": "control.maps",
    "pose_map": "control.maps",
    "load_pipeline": "engine",
    "transform": "engine",
    "TransformResult": "engine",
    "animate": "animation",
    "write_video": "imaging.video",
    "read_video": "imaging.video",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zrealism_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return __all__
