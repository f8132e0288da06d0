"""Fake folder_paths: model folders under `models_dir` (set by the fixture)."""
from __future__ import annotations

import os

models_dir = ""
output_directory = ""
folder_names_and_paths: dict = {}
SUPPORTED = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}


def setup(root: str) -> None:
    global models_dir, output_directory
    models_dir = os.path.join(root, "models")
    output_directory = os.path.join(root, "output")
    folder_names_and_paths.clear()
    for name in ("checkpoints", "controlnet", "vae", "diffusers", "animatediff_models", "animatediff_motion_lora", "loras",
                 "clip_vision"):
        path = os.path.join(models_dir, name)
        os.makedirs(path, exist_ok=True)
        folder_names_and_paths[name] = ([path], set(SUPPORTED) if name != "diffusers" else {"folder"})
    folder_names_and_paths["custom_nodes"] = ([os.path.join(root, "custom_nodes")], set())


def get_folder_paths(folder_name):
    return list(folder_names_and_paths[folder_name][0])


def add_model_folder_path(folder_name, full_folder_path, is_default=False):
    paths, exts = folder_names_and_paths.setdefault(folder_name, ([], set(SUPPORTED)))
    if full_folder_path not in paths:
        paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)


def get_filename_list(folder_name):
    paths, exts = folder_names_and_paths[folder_name]
    out = []
    for base in paths:
        for root, _dirs, files in os.walk(base):
            for f in files:
                if not exts or os.path.splitext(f)[1].lower() in exts:
                    out.append(os.path.relpath(os.path.join(root, f), base).replace(os.sep, "/"))
    return sorted(out)


def get_full_path(folder_name, filename):
    for base in folder_names_and_paths[folder_name][0]:
        path = os.path.join(base, filename)
        if os.path.isfile(path):
            return path
    return None


def get_output_directory():
    return output_directory
