"""A folder of images: which files, in which order, and loading them with bad files skipped.

One listing rule for every folder the project reads (`zrealism run FOLDER`, a folder of clip frames,
the Load Image Folder node): image files by suffix, hidden files left out, natural name order
(hero_2 before hero_10), then an optional glob on the file name and a limit.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Union

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def natural_key(name: str) -> list:
    """Sort key: digit runs compare as numbers, the rest case-insensitively (frame_2 before frame_10)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t]


def image_files(folder: Union[str, Path], pattern: str = "*", limit: int = 0) -> List[Path]:
    """The image files directly in `folder`, in natural name order, whose names match the glob
    `pattern` (case-insensitive; empty = all), at most `limit` of them (0 = all)."""
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"folder not found: {p}; give an existing folder of images.")
    if limit < 0:
        raise InputError(f"limit must be 0 (all) or more; got {limit}.")
    glob = (pattern or "").strip().lower() or "*"
    files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                    and not f.name.startswith(".") and fnmatch.fnmatchcase(f.name.lower(), glob)),
                   key=lambda f: natural_key(f.name))
    if not files:
        what = f"matching {pattern!r} " if glob != "*" else ""
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) {what}in folder {p}; "
                         "put the drawings there or change the pattern.")
    return files[:limit] if limit else files


@dataclass
class FolderImages:
    """What load_folder read: the images (H,W,C float32 0..1, alpha kept) with their files, and one
    line per file that could not be read."""

    images: List[np.ndarray] = field(default_factory=list)
    files: List[Path] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{len(self.images)} image(s) loaded, {len(self.skipped)} skipped"]
        return "\n".join(lines + [f"skipped {s}" for s in self.skipped])


def load_folder(folder: Union[str, Path], pattern: str = "*", limit: int = 0) -> FolderImages:
    """Load image_files(folder, pattern, limit): a file that cannot be read is skipped with a line
    saying why, and the rest go on. Raises when no file could be read (nothing to pass on)."""
    from .images import load_image

    out = FolderImages()
    for f in image_files(folder, pattern, limit):
        try:
            out.images.append(load_image(f, name="image"))
        except InputError as exc:
            out.skipped.append(f"{f.name}: {exc}")
            continue
        out.files.append(f)
    if not out.images:
        raise InputError(f"none of the images in folder {folder} could be read:\n" + "\n".join(out.skipped))
    return out

