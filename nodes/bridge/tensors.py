"""ComfyUI's IMAGE / MASK tensors <-> the core's numpy arrays, and the batch broadcasting rule.

IMAGE is a float32 torch tensor [B,H,W,C] in 0..1; MASK is [B,H,W] (or [H,W]) in 0..1.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Sequence

import numpy as np

from . import host


def _array(x: Any) -> np.ndarray:
    return x.detach().cpu().float().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float32)


def _tensor(arrays: Iterable[np.ndarray]) -> Any:
    """Same-size float arrays -> one float32 CPU tensor [B, ...] clipped to 0..1 (IMAGE and MASK alike)."""
    stack = np.stack([np.asarray(a, dtype=np.float32) for a in arrays], axis=0)
    return host.torch().from_numpy(np.ascontiguousarray(np.clip(stack, 0.0, 1.0)))


def _batch(arr: np.ndarray, ndim: int, what: str) -> List[np.ndarray]:
    if arr.ndim != ndim:
        from ...zrealism_core.errors import InputError

        raise InputError(f"{what}; got shape {tuple(arr.shape)}.")
    return [np.ascontiguousarray(a) for a in arr]


def image_to_numpy(image: Any) -> List[np.ndarray]:
    """IMAGE [B,H,W,C] (or [H,W,C]) tensor -> list of B float32 H,W,C arrays."""
    arr = _array(image)
    if arr.ndim == 3:
        arr = arr[None]
    return _batch(arr, 4, "IMAGE must be [batch, height, width, channels]")


def numpy_to_image(frames: Iterable[np.ndarray]) -> Any:
    """list of H,W,3 float arrays (same size) -> IMAGE tensor [B,H,W,3] float32 on the CPU."""
    return _tensor(frames)


def mask_to_numpy(mask: Any) -> List[np.ndarray]:
    """MASK [B,H,W] or [H,W] tensor -> list of float32 H,W arrays."""
    arr = _array(mask)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return _batch(arr, 3, "MASK must be [batch, height, width]")


def numpy_to_mask(masks: Iterable[np.ndarray]) -> Any:
    """list of H,W float arrays (same size) -> MASK tensor [B,H,W] float32 on the CPU."""
    return _tensor(masks)


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
