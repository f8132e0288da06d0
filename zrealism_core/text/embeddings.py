"""Textual-inversion embeddings: find `embedding:NAME` in the embeddings folders and read its vectors.

Where: the folders given (ComfyUI's `embeddings` folders in the node, `--embeddings DIR` in the CLI,
`load_pipeline(..., embedding_dirs=[...])` in Python), searched with their subfolders, as ComfyUI
does. NAME may carry its extension or not (.safetensors, then .pt, then .bin are tried) and may
name a subfolder ("styles/film_grain"); a name that points outside the folders is not looked up.

Formats (read with safetensors, or torch.load(weights_only=True); nothing is unpickled):
- A1111 .pt: {"string_to_param": {"*": tensor (n, 768)}, ...}; A1111 .safetensors: {"emb_params": ...}
- diffusers / other single-token files: {"<token>": tensor (768,) or (n, 768)}
- SDXL files ({"clip_l", "clip_g"}): the clip_l vectors, which are SD1.5's width (ComfyUI does the same)
- old .pt files whose pickle names classes weights_only refuses: the raw float data is read from the
  zip archive without unpickling (the vectors are the only float block of SD1.5 width).
A file that is unreadable, empty or of another width (SD2.x: 1024) raises a ModelFileError naming it.
"""
from __future__ import annotations

import logging
import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import ModelFileError

log = logging.getLogger("zrealism")

EXTENSIONS = (".safetensors", ".pt", ".bin")
FAMILY_BY_WIDTH = {768: "SD1.5", 1024: "SD2.x", 1280: "SDXL (its second text encoder)"}


def search_dirs(dirs: Optional[Iterable[Any]]) -> List[Path]:
    """The given folders and every folder below them (existing ones only; order: as given, then sorted)."""
    out: List[Path] = []
    seen = set()
    for d in dirs or ():
        root = Path(str(d)).expanduser()
        if not root.is_dir():
            continue
        found = [root] + sorted(Path(r) for r, _, _ in os.walk(root, followlinks=True) if Path(r) != root)
        for p in found:
            key = str(p.resolve())
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def find_embedding(name: str, dirs: Optional[Iterable[Any]]) -> Optional[Path]:
    """The file `name` refers to (with or without extension), or None."""
    name = str(name or "").strip()
    if not name:
        return None
    for folder in search_dirs(dirs):
        base = folder.resolve()
        candidate = (folder / name).resolve()
        if os.path.commonpath([str(base), str(candidate)]) != str(base):
            continue  # "../x" must not escape the embeddings folder
        if candidate.is_file():
            return candidate
        for ext in EXTENSIONS:
            with_ext = candidate.with_name(candidate.name + ext)
            if with_ext.is_file():
                return with_ext
    return None


def _bad(path: Path, why: str) -> ModelFileError:
    return ModelFileError(
        f"embedding file {path} {why}. Download it again, or remove it from the embeddings folder "
        "(ComfyUI/models/embeddings) if it is not a textual-inversion embedding for SD1.5."
    )


def _raw_zip_vectors(path: Path, width: int) -> Optional[Any]:
    """Vectors from an old torch zip file without unpickling: its largest float32 block of `width` columns."""
    import torch

    try:
        with zipfile.ZipFile(str(path)) as zf:
            best = None
            for info in zf.infolist():
                if "/data/" not in info.filename or info.file_size < 4 * width or info.file_size % (4 * width):
                    continue
                if best is None or info.file_size > best.file_size:
                    best = info
            if best is None:
                return None
            data = bytearray(zf.read(best))
    except (zipfile.BadZipFile, OSError):
        return None
    log.info("zrealism: read embedding %s from its raw data (its pickle needs classes weights_only refuses)", path.name)
    return torch.frombuffer(data, dtype=torch.float32).reshape(-1, width).clone()


def _read(path: Path) -> Dict[str, Any]:
    from ..models.files import load_torch_file

    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise _bad(path, f"is not a valid .safetensors file ({exc})") from exc
    return load_torch_file(path)


def _first_tensor(obj: Any) -> Any:
    import torch

    if torch.is_tensor(obj):
        return obj
    if isinstance(obj, dict):
        for value in obj.values():
            found = _first_tensor(value)
            if found is not None:
                return found
    return None


def load_embedding(path: Any, width: int = 768) -> Any:
    """The vectors of one embedding file: a float32 tensor (n, width). ModelFileError if unusable."""
    import pickle

    import torch

    p = Path(str(path))
    try:
        data: Any = _read(p)
    except ModelFileError as exc:
        raw = _raw_zip_vectors(p, width) if isinstance(exc.__cause__, pickle.UnpicklingError) else None
        if raw is None:
            raise _bad(p, f"could not be read: {exc}") from exc
        data = {"raw": raw}
    if "string_to_param" in data:
        vec = _first_tensor(data["string_to_param"])
    elif "emb_params" in data:
        vec = data["emb_params"]
    elif "clip_l" in data:
        vec = data["clip_l"]
    else:
        vec = _first_tensor(data)
    if vec is None or not torch.is_tensor(vec) or vec.numel() == 0:
        raise _bad(p, "holds no embedding vectors")
    if not vec.is_floating_point() or vec.dim() not in (1, 2):
        raise _bad(p, f"does not hold embedding vectors (a {tuple(vec.shape)} {vec.dtype} tensor)")
    vec = vec.detach().to(torch.float32).reshape(-1, vec.shape[-1])
    if vec.shape[-1] != width:
        family = FAMILY_BY_WIDTH.get(vec.shape[-1], f"a model with width {vec.shape[-1]}")
        raise _bad(p, f"is an embedding for {family} (vectors of width {vec.shape[-1]}); SD1.5 needs width {width}")
    if not torch.isfinite(vec).all():
        raise _bad(p, "holds NaN/inf values (damaged file)")
    return vec


class EmbeddingLibrary:
    """Name -> vectors for one set of folders, each file read once (reread when it changes)."""

    def __init__(self, dirs: Optional[Sequence[Any]], width: int = 768) -> None:
        self.dirs = [str(d) for d in dirs or ()]
        self.width = int(width)
        self._cache: Dict[Tuple[str, int, int], Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Optional[Any]:
        """The (n, width) vectors for `name`, or None when no such file exists."""
        path = find_embedding(name, self.dirs)
        if path is None:
            return None
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = load_embedding(path, self.width)
            return self._cache[key]

    def where(self) -> str:
        return ", ".join(self.dirs) if self.dirs else "no embeddings folder was given"
