"""ZRealism_LoadImageFolder: every image of a folder as a list, each at its own size, with its name
(core: zrealism_core.imaging.folder)."""
from __future__ import annotations

import logging
import os
from typing import Any, Tuple

import numpy as np

from . import bridge

log = logging.getLogger("zrealism")


def folder_path(folder: str) -> str:
    """An absolute path as given (~ expanded); anything else relative to ComfyUI's input folder."""
    text = os.path.expanduser((folder or "").strip())
    return text if os.path.isabs(text) else os.path.join(bridge.input_directory(), text)


def _background_mask(image: np.ndarray) -> np.ndarray:
    """Load Image's MASK convention: 1 where the picture is transparent, all 0 without an alpha channel
    (White Background Prep then detects the background itself)."""
    if image.shape[2] == 4:
        return 1.0 - image[:, :, 3]
    return np.zeros(image.shape[:2], np.float32)


class ZRealism_LoadImageFolder:
    DESCRIPTION = (
        "Load every image of a folder (a folder under ComfyUI's input directory, or an absolute path) in name order "
        "(hero_2 before hero_10), optionally only the names matching a glob and at most a limit. The images go out as "
        "a list, each at its own size: every node after this one runs once per image. Their file names and a save "
        "prefix per image go out as lists too, so Save Image / Z-Realism Save Video keep the source names (connect "
        "filename_prefix to their filename_prefix). A file that cannot be read is skipped with a line in the report; "
        "the rest go on."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "MASK", "STRING", "STRING", "INT", "STRING")
    RETURN_NAMES = ("image", "mask", "name", "filename_prefix", "count", "report")
    OUTPUT_IS_LIST = (True, True, True, True, False, False)
    OUTPUT_TOOLTIPS = (
        "The images, one list item per file, each at its own size (RGB, 0..1; transparency goes to the mask).",
        "Per image, as Load Image gives it: 1 where the file is transparent, all 0 without transparency "
        "(connect it to White Background Prep's mask with mask_is_background on).",
        "Per image, its file name (e.g. hero_01.png).",
        "Per image, filename_prefix + its file name without the suffix (e.g. ZRealism/hero_01): connect it to a "
        "save node's filename_prefix so each result is saved under its source's name.",
        "How many images were loaded.",
        "How many images were loaded and skipped, and one line per skipped file saying why.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "folder": ("STRING", {
                    "default": "",
                    "tooltip": "The folder of images: a path relative to ComfyUI's input directory (e.g. 'sheets/hero'; "
                               "empty = the input directory itself), or an absolute path. Sub-folders are not read."}),
                "pattern": ("STRING", {
                    "default": "*",
                    "tooltip": "Glob on the file names, case-insensitive (e.g. '*.png', 'hero_*'); '*' = every image "
                               "(.png, .jpg, .jpeg, .webp, .bmp, .tif, .tiff)."}),
                "limit": ("INT", {
                    "default": 0, "min": 0, "max": 100000, "step": 1,
                    "tooltip": "Take at most this many files, the first in name order (a bad one among them is skipped, "
                               "not replaced). 0 = all."}),
                "filename_prefix": ("STRING", {
                    "default": "ZRealism/",
                    "tooltip": "Start of the filename_prefix output: this text plus each file's name without its suffix "
                               "('ZRealism/' gives ZRealism/hero_01). May contain sub-folders, as Save Image's prefix."}),
            },
        }

    @classmethod
    def IS_CHANGED(cls, folder: str = "", pattern: str = "*", limit: int = 0, filename_prefix: str = "ZRealism/") -> str:
        """ComfyUI re-runs the node when this changes: the listed files, their sizes and times."""
        from ..zrealism_core.errors import ZRealismError
        from ..zrealism_core.imaging.folder import image_files

        try:
            files = image_files(folder_path(folder), pattern, int(limit))
        except ZRealismError as exc:
            return f"error: {exc}"  # load() raises the same error, with its fix
        stats = [(f.name, f.stat()) for f in files]
        return "\n".join(f"{name} {st.st_size} {st.st_mtime_ns}" for name, st in stats)

    def load(self, folder: str = "", pattern: str = "*", limit: int = 0,
             filename_prefix: str = "ZRealism/") -> Tuple[Any, ...]:
        from ..zrealism_core.imaging.folder import load_folder
        from ..zrealism_core.imaging.images import split_rgb_alpha

        loaded = load_folder(folder_path(folder), pattern, int(limit))
        for line in loaded.skipped:
            log.warning("zrealism: Load Image Folder skipped %s", line)
        images, masks = [], []
        for arr, f in zip(loaded.images, loaded.files):
            rgb, _ = split_rgb_alpha(arr, name=f.name)
            images.append(bridge.numpy_to_image([rgb]))
            masks.append(bridge.numpy_to_mask([_background_mask(arr)]))
        names = [f.name for f in loaded.files]
        prefixes = [f"{filename_prefix or ''}{f.stem}" for f in loaded.files]
        return images, masks, names, prefixes, len(images), loaded.report()


NODE_CLASS_MAPPINGS = {"ZRealism_LoadImageFolder": ZRealism_LoadImageFolder}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_LoadImageFolder": "Z-Realism Load Image Folder"}
