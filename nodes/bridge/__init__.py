"""The only place that touches ComfyUI, split by what it does:

- host: the ComfyUI modules (imported once, None outside ComfyUI; tests swap them there);
- tensors: IMAGE/MASK tensors <-> numpy, the batch broadcasting rule;
- folders: model, input and output folders;
- memory: device and dtype, ModelPatchers, placement through ComfyUI's memory manager, the detector store;
- progress: progress bar, previews, Cancel;
- batch: the one batch loop every node runs its stage through.

The nodes use `bridge.<name>`; the names below are the package's API.
"""
from __future__ import annotations

from .batch import each_image, run_batch
from .folders import (
    DIFFUSERS_PREFIX, MAX_WALK_DEPTH, annotator_dirs, diffusers_folders, embedding_dirs, folder_locations,
    input_directory, list_base_models, list_models, register_model_folder, require_model, resolve_base_model,
    resolve_diffusers_folder, resolve_model, save_path, walk_models,
)
from .host import in_comfyui
from .memory import DEVICES, PRECISIONS, detector_store, engine_device_dtype, engine_patchers, module_patcher, partial_vram, placement
from .progress import batch_progress, cancel_check, check_interrupted, preview_progress, progress_callback
from .tensors import check_batch, image_to_numpy, mask_to_numpy, numpy_to_image, numpy_to_mask, pick

CATEGORY = "Z-Realism"

__all__ = [
    "CATEGORY", "DEVICES", "DIFFUSERS_PREFIX", "MAX_WALK_DEPTH", "PRECISIONS", "annotator_dirs", "batch_progress",
    "cancel_check", "check_batch", "check_interrupted", "detector_store", "diffusers_folders", "each_image",
    "embedding_dirs", "engine_device_dtype", "engine_patchers", "folder_locations", "image_to_numpy", "in_comfyui",
    "input_directory", "list_base_models", "list_models", "mask_to_numpy", "module_patcher", "numpy_to_image",
    "numpy_to_mask", "partial_vram", "pick", "placement", "preview_progress", "progress_callback",
    "register_model_folder", "require_model", "resolve_base_model", "resolve_diffusers_folder", "resolve_model",
    "run_batch", "save_path", "walk_models",
]
