"""Conversion of user images and masks into plain float32 numpy arrays.

Every core function takes PIL images or numpy arrays and calls these first, so
bad input is rejected in one place with one kind of message.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

from ..errors import InputError

ImageLike = Union[np.ndarray, "Image.Image"]  # noqa: F821 - PIL is optional at type level


def _pil_to_array(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in ("1", "L", "P", "LA", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode == "P":
            # Palette PNGs may carry transparency in the palette: keep it as alpha.
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif mode == "PA":
            img = img.convert("RGBA")
        elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
            img = img.convert("RGB")
        arr = np.asarray(img)
        return arr
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return (arr / peak).astype(np.float32)
    if mode == "F":
        return np.asarray(img, dtype=np.float32)
    return np.asarray(img.convert("RGB"))


def to_float_array(image: ImageLike, *, name: str = "image") -> np.ndarray:
    """Any supported image as float32 H,W,C (C = 1, 3 or 4) in 0..1.

    Accepts PIL images (any mode, 16-bit included) and numpy arrays H,W / H,W,1 /
    H,W,3 / H,W,4 of uint8, uint16, bool or float in 0..1.
    """
    if image is None:
        raise InputError(f"{name} is missing: pass a PIL image or a numpy array.")
    if not isinstance(image, np.ndarray):
        if hasattr(image, "mode") and hasattr(image, "size"):
            if image.size[0] == 0 or image.size[1] == 0:
                raise InputError(f"{name} is empty (size {image.size}); load a real picture.")
            image = _pil_to_array(image)
        else:
            raise InputError(f"{name} must be a PIL image or a numpy array, got {type(image).__name__}.")
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InputError(f"{name} must be H,W or H,W,C; got shape {arr.shape}.")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); load a real picture.")
    if c not in (1, 2, 3, 4):
        raise InputError(f"{name} has {c} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA).")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32)
        out *= np.float32(1.0 / 255.0)  # in place: one temporary less on megapixel images
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32)
        out *= np.float32(1.0 / 65535.0)
    elif arr.dtype == bool:
        out = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        lo, hi = float(out.min()), float(out.max())  # NaN propagates into min/max; inf shows in them
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(f"{name} contains NaN or infinite values; fix the upstream node or file.")
        if lo < -1e-3 or hi > 1.0 + 1e-3:
            raise InputError(
                f"{name} has float values outside 0..1 (min {lo:.3g}, max {hi:.3g}); "
                "scale it to 0..1 first."
            )
        if lo < 0.0 or hi > 1.0:
            out = np.clip(out, 0.0, 1.0)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise InputError(f"{name} has integer values outside 0..255; pass uint8, uint16 or float 0..1.")
        out = arr.astype(np.float32) / 255.0
    else:
        raise InputError(f"{name} has unsupported dtype {arr.dtype}.")
    if c == 2:  # gray + alpha
        out = np.concatenate([out[:, :, :1]] * 3 + [out[:, :, 1:2]], axis=2)
    return np.ascontiguousarray(out)


def split_rgb_alpha(image: ImageLike, *, name: str = "image") -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(rgb H,W,3 float32, alpha H,W float32 or None) from any supported image."""
    arr = to_float_array(image, name=name)
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2), None
    if arr.shape[2] == 4:
        import cv2

        # OpenCV's channel split is a SIMD pass; numpy's strided slice copies are several times slower.
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2RGB), cv2.extractChannel(arr, 3)
    return arr, None


def to_rgb(image: ImageLike, *, name: str = "image") -> np.ndarray:
    """H,W,3 float32 in 0..1. An alpha channel is composited onto white."""
    rgb, alpha = split_rgb_alpha(image, name=name)
    if alpha is not None:
        rgb = rgb * alpha[:, :, None] + (1.0 - alpha[:, :, None])
    return rgb.astype(np.float32)


def to_mask(mask: Any, shape: Optional[Tuple[int, int]] = None, *, name: str = "mask") -> np.ndarray:
    """H,W float32 in 0..1 from a PIL image or array; checks it matches `shape` (H, W)."""
    arr = to_float_array(mask, name=name)
    if arr.shape[2] == 4:
        arr = arr[:, :, 3:4] if arr[:, :, 3].min() < 1.0 else arr[:, :, :3]
    m = arr.mean(axis=2) if arr.shape[2] > 1 else arr[:, :, 0]
    if shape is not None and m.shape != tuple(shape):
        raise InputError(
            f"{name} is {m.shape[1]}x{m.shape[0]} but the image is {shape[1]}x{shape[0]}; "
            "resize the mask to the image or leave it unconnected."
        )
    return np.ascontiguousarray(m.astype(np.float32))


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float 0..1 array -> uint8, rounded."""
    return (np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_pil(image: np.ndarray):
    """float 0..1 H,W[,C] array -> PIL image."""
    from PIL import Image

    arr = to_uint8(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr)


def resize_rgb(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """H,W,3 float 0..1 -> h,w,3 float32: the one resampler for the pictures and control maps the
    still and the clip are made from (Lanczos on the 8-bit picture the pipelines are given anyway)."""
    if image.shape[:2] == (h, w):
        return image
    from PIL import Image

    out = to_pil(image).resize((w, h), Image.LANCZOS)
    return np.asarray(out, dtype=np.float32) / 255.0


def load_image(path: Union[str, Path], *, name: str = "image") -> np.ndarray:
    """Read an image file as float32 H,W,C (alpha kept) with a clear error if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name} file not found: {p}")
    try:
        with Image.open(p) as img:
            img.load()
            return to_float_array(img, name=f"{name} {p.name}")
    except UnidentifiedImageError as exc:
        raise InputError(f"{name} {p} is not an image file Pillow can read.") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # truncated or damaged file
        raise InputError(f"{name} {p} could not be read ({exc}); re-export or replace the file.") from exc


def save_image(image: np.ndarray, path: Union[str, Path]) -> Path:
    """Write a float 0..1 image; the folder is created. Written via a temp file so no half file remains."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    try:
        to_pil(image).save(tmp, format=_format_for(p))
        tmp.replace(p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _format_for(p: Path) -> str:
    ext = p.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(ext, "PNG")
