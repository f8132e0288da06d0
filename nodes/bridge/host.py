"""The ComfyUI modules this pack uses, imported once and optional (None outside ComfyUI), so the
nodes import (and are testable under tests/fakes) without ComfyUI and without a GPU. Every other
bridge module reads them from here at call time (tests swap them here)."""
from __future__ import annotations

from typing import Any

try:  # ComfyUI is present only when running inside it (or under test fakes).
    import folder_paths  # type: ignore
except ImportError:  # pragma: no cover - depends on the environment
    folder_paths = None

try:
    import comfy.model_management as model_management  # type: ignore
except ImportError:  # pragma: no cover
    model_management = None

try:
    import comfy.utils as comfy_utils  # type: ignore
except ImportError:  # pragma: no cover
    comfy_utils = None

try:  # ComfyUI's previewer (--preview-method, TAESD from models/vae_approx) and the SD1.5 latent format
    import comfy.latent_formats as latent_formats  # type: ignore
    import latent_preview  # type: ignore
except ImportError:  # pragma: no cover
    latent_formats = latent_preview = None


def in_comfyui() -> bool:
    """True inside ComfyUI (or under the test fakes); the Model Loader then leaves caching to ComfyUI."""
    return folder_paths is not None and model_management is not None


def torch() -> Any:
    """torch, imported on first use (importing the nodes must not import it)."""
    import torch as _t

    return _t
