"""The one module that touches ComfyUI: tensors <-> numpy, folders, progress, memory.

Every ComfyUI import lives here and is optional, so the node classes import (and are
testable) without ComfyUI, and without a GPU.

ComfyUI conventions: IMAGE is a float32 torch tensor [B,H,W,C] in 0..1; MASK is [B,H,W]
(or [H,W]) in 0..1.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, List, Optional, Sequence

import numpy as np

log = logging.getLogger("zrealism")

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


CATEGORY = "Z-Realism"


def in_comfyui() -> bool:
    return folder_paths is not None and model_management is not None


# ---------------------------------------------------------------- tensors <-> numpy

def _torch():
    import torch

    return torch


def image_to_numpy(image: Any) -> List[np.ndarray]:
    """IMAGE [B,H,W,C] (or [H,W,C]) tensor -> list of B float32 H,W,C arrays."""
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        from ..zrealism_core.errors import InputError

        raise InputError(f"IMAGE must be [batch, height, width, channels]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_image(frames: Iterable[np.ndarray]) -> Any:
    """list of H,W,3 float arrays (same size) -> IMAGE tensor [B,H,W,3] float32 on the CPU."""
    torch = _torch()
    stack = np.stack([np.asarray(f, dtype=np.float32) for f in frames], axis=0)
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def mask_to_numpy(mask: Any) -> List[np.ndarray]:
    """MASK [B,H,W] or [H,W] tensor -> list of float32 H,W arrays."""
    arr = mask.detach().cpu().float().numpy() if hasattr(mask, "detach") else np.asarray(mask, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        from ..zrealism_core.errors import InputError

        raise InputError(f"MASK must be [batch, height, width]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_mask(masks: Iterable[np.ndarray]) -> Any:
    torch = _torch()
    stack = np.stack([np.asarray(m, dtype=np.float32) for m in masks], axis=0)
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def pick(items: Sequence[Any], i: int) -> Any:
    """Batch broadcasting rule shared by all nodes: one item serves every image; otherwise index."""
    return items[0] if len(items) == 1 else items[i]


def check_batch(name: str, items: Sequence[Any], batch: int) -> None:
    if len(items) not in (1, batch):
        from ..zrealism_core.errors import InputError

        raise InputError(
            f"{name} has a batch of {len(items)} but the image batch is {batch}; "
            f"connect one {name} for all images or exactly one per image."
        )


# ---------------------------------------------------------------- model folders

def register_model_folder(name: str, subdir: Optional[str] = None, extensions: Iterable[str] = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")) -> None:
    """Add a models/<subdir> folder under ComfyUI's models dir if ComfyUI does not know `name` yet."""
    if folder_paths is None:
        return
    if name in getattr(folder_paths, "folder_names_and_paths", {}):
        return
    path = os.path.join(folder_paths.models_dir, subdir or name)
    folder_paths.folder_names_and_paths[name] = ([path], set(extensions))


def list_models(*folders: str) -> List[str]:
    """File names ComfyUI lists for the given model folders (empty outside ComfyUI)."""
    if folder_paths is None:
        return []
    names: List[str] = []
    for folder in folders:
        try:
            names.extend(folder_paths.get_filename_list(folder))
        except KeyError:
            continue
    return sorted(set(names))


def folder_locations(folder: str) -> List[str]:
    """Where ComfyUI looks for `folder` models (for error messages)."""
    if folder_paths is None:
        return []
    try:
        return list(folder_paths.get_folder_paths(folder))
    except KeyError:
        return []


def resolve_model(folder: str, name: str) -> Optional[str]:
    """Full path of a model listed by ComfyUI, or None."""
    if folder_paths is None or not name:
        return None
    try:
        return folder_paths.get_full_path(folder, name)
    except KeyError:
        return None


def output_directory() -> str:
    if folder_paths is not None:
        return folder_paths.get_output_directory()
    return os.path.abspath("output")


# ---------------------------------------------------------------- progress and cancel

def progress_callback(total: int) -> Callable[[int, int], None]:
    """A `callback(step, total)` that drives ComfyUI's ProgressBar (and so its Cancel button).

    Each update runs ComfyUI's global hook, which raises InterruptProcessingException when the
    user pressed Cancel; the core turns that into a clean stop.
    """
    if comfy_utils is None:
        return lambda step, total_=total: None
    bar = comfy_utils.ProgressBar(total)

    def update(step: int, total_: int = total) -> None:
        bar.update_absolute(step, total_)

    return update


def interrupted() -> bool:
    if model_management is None:
        return False
    return bool(model_management.processing_interrupted())
