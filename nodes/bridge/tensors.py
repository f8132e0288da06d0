"""ComfyUI's IMAGE / MASK tensors <-> the core's numpy arrays, and the batch broadcasting rule.

IMAGE is a float32 torch tensor [B,H,W,C] in 0..1; MASK is [B,H,W] (or [H,W]) in 0..1.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Sequence

import numpy as np

from . import host


def image_to_numpy(image: Any) -> List[np.ndarray]:
    """IMAGE [B,H,W,C] (or [H,W,C]) tensor -> list of B float32 H,W,C arrays."""
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        from ...zrealism_core.errors import InputError

        raise InputError(f"IMAGE must be [batch, height, width, channels]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_image(frames: Iterable[np.ndarray]) -> Any:
    """list of H,W,3 float arrays (same size) -> IMAGE tensor [B,H,W,3] float32 on the CPU."""
    torch = host.torch()
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
        from ...zrealism_core.errors import InputError

        raise InputError(f"MASK must be [batch, height, width]; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def numpy_to_mask(masks: Iterable[np.ndarray]) -> Any:
    torch = host.torch()
    stack = np.stack([np.asarray(m, dtype=np.float32) for m in masks], axis=0)
    return torch.from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def pick(items: Sequence[Any], i: int) -> Any:
    """Batch broadcasting rule shared by all nodes: one item serves every image; otherwise index."""
    return items[0] if len(items) == 1 else items[i]


def check_batch(name: str, items: Sequence[Any], batch: int) -> None:
    if len(items) not in (1, batch):
        from ...zrealism_core.errors import InputError

        raise InputError(
            f"{name} has a batch of {len(items)} but the image batch is {batch}; "
            f"connect one {name} for all images or exactly one per image."
        )
