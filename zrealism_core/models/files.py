"""Reading weight files safely: safetensors first, torch.load(weights_only=True) otherwise, never unpickling.

Used by every loader (models/, adapters/, text/embeddings.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..errors import ModelFileError

PathLike = Union[str, Path]


SAFE_SUFFIXES = (".safetensors",)


TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def load_torch_file(path: Path) -> Dict[str, Any]:
    import pickle

    import torch

    try:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{path} contains Python objects besides weights, and Z-Realism never unpickles code. "
            "Use the .safetensors version of this model (most are published as .safetensors)."
        ) from exc
    except (EOFError, RuntimeError, OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not a readable PyTorch checkpoint (truncated or corrupt download?): {exc}") from exc
    while isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ModelFileError(f"{path} does not hold a weights dictionary; it is not a model checkpoint.")
    return obj


def read_shapes(path: PathLike) -> Dict[str, Tuple[int, ...]]:
    """key -> shape of every tensor in a weights file (safetensors: header only, no tensor data read)."""
    p = Path(path)
    if p.suffix.lower() in SAFE_SUFFIXES:
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt") as fh:
                return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise ModelFileError(
                f"{p} is not a valid .safetensors file (truncated or corrupt download? size {p.stat().st_size} bytes): {exc}. "
                "Download it again."
            ) from exc
    if p.suffix.lower() in TORCH_SUFFIXES:
        sd = load_torch_file(p)
        return {k: tuple(getattr(v, "shape", ())) for k, v in sd.items() if hasattr(v, "shape")}
    raise ModelFileError(f"{p}: unsupported file type {p.suffix!r}; use .safetensors (or .ckpt/.pt/.pth).")


def read_weights(p: Path) -> Dict[str, Any]:
    if p.suffix.lower() in SAFE_SUFFIXES:
        from safetensors.torch import load_file

        return load_file(str(p))
    return load_torch_file(p)


def file_key(path: Optional[PathLike]) -> Tuple:
    if path is None or str(path) == "":
        return ("",)
    p = Path(str(path)).expanduser()
    try:
        st = p.stat()
        return (str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(p),)
