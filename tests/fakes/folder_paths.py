"""Fake folder_paths: model folders under `models_dir` (set by the fixture)."""
from __future__ import annotations

import os
import re
import time

models_dir = ""
output_directory = ""
input_directory = ""
folder_names_and_paths: dict = {}
SUPPORTED = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}


def setup(root: str) -> None:
    global models_dir, output_directory, input_directory
    models_dir = os.path.join(root, "models")
    output_directory = os.path.join(root, "output")
    input_directory = os.path.join(root, "input")
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


def get_input_directory():
    return input_directory


def get_save_image_path(filename_prefix, output_dir, image_width=0, image_height=0):
    """The contract of ComfyUI's folder_paths.get_save_image_path (written for the fakes): returns
    (folder, file name start, next counter, subfolder, prefix); the prefix's %tokens% are filled in, its
    sub-folders are made, the counter follows the highest `<name>_<n>_...` there, and a prefix that leaves
    the output folder raises."""
    now = time.localtime()
    tokens = {"width": image_width, "height": image_height, "year": now.tm_year, "month": f"{now.tm_mon:02}",
              "day": f"{now.tm_mday:02}", "hour": f"{now.tm_hour:02}", "minute": f"{now.tm_min:02}",
              "second": f"{now.tm_sec:02}"}
    for key, value in tokens.items():
        filename_prefix = filename_prefix.replace(f"%{key}%", str(value))
    subfolder, filename = os.path.split(os.path.normpath(filename_prefix))
    folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(folder))) != output_dir:
        raise Exception("Saving image outside the output folder is not allowed.")
    os.makedirs(folder, exist_ok=True)
    rx = re.compile(re.escape(filename) + r"_(\d+)_")
    numbers = [int(m.group(1)) for m in map(rx.match, os.listdir(folder)) if m]
    return folder, filename, max(numbers, default=0) + 1, subfolder, filename_prefix
