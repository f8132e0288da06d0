"""ComfyUI's model, input and output folders: model lists for the combos, paths by name, the
annotator search path, save paths (folder_paths, extra_model_paths.yaml)."""
from __future__ import annotations

import json
import os
from typing import Iterable, List, Optional, Tuple

from . import host
from ...zrealism_core.models.annotators import ANNOTATOR_FOLDER

DIFFUSERS_PREFIX = "[diffusers] "


def register_model_folder(name: str, subdir: Optional[str] = None, extensions: Iterable[str] = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")) -> None:
    """Add a models/<subdir> folder under ComfyUI's models dir if ComfyUI does not know `name` yet."""
    if host.folder_paths is None:
        return
    if name in getattr(host.folder_paths, "folder_names_and_paths", {}):
        return
    path = os.path.join(host.folder_paths.models_dir, subdir or name)
    host.folder_paths.folder_names_and_paths[name] = ([path], set(extensions))


def list_models(*folders: str) -> List[str]:
    """File names ComfyUI lists for the given model folders (empty outside ComfyUI)."""
    if host.folder_paths is None:
        return []
    names: List[str] = []
    for folder in folders:
        try:
            names.extend(host.folder_paths.get_filename_list(folder))
        except KeyError:
            continue
    return sorted(set(names))


def folder_locations(folder: str) -> List[str]:
    """Where ComfyUI looks for `folder` models (for error messages)."""
    if host.folder_paths is None:
        return []
    try:
        return list(host.folder_paths.get_folder_paths(folder))
    except KeyError:
        return []


def resolve_model(folder: str, name: str) -> Optional[str]:
    """Full path of a model listed by ComfyUI, or None."""
    if host.folder_paths is None or not name:
        return None
    try:
        return host.folder_paths.get_full_path(folder, name)
    except KeyError:
        return None


def embedding_dirs() -> List[str]:
    """ComfyUI's `embeddings` folders (models/embeddings plus extra_model_paths.yaml entries): where
    `embedding:NAME` in a prompt is looked up, as in ComfyUI's own CLIP Text Encode."""
    return folder_locations("embeddings")


def require_model(folder: str, name: str, what: str, hint: str) -> str:
    """Full path of `name` in ComfyUI's `folder`, or a ModelFileError saying where it was looked for."""
    path = resolve_model(folder, name) if name not in ("none", "", None) else None
    if not path:
        from ...zrealism_core.errors import ModelFileError

        where = ", ".join(folder_locations(folder)) or f"ComfyUI/models/{folder}/"
        raise ModelFileError(f"{what} {name!r} was not found (looked in: {where}). {hint}")
    return path


def annotator_dirs() -> List[str]:
    """Folders the control-map detectors search, in this order (zrealism_core.models.annotators walks each):

    1. ComfyUI's `zrealism_annotators` model folder(s) (models/zrealism_annotators/ plus any
       extra_model_paths.yaml entries), listed even when missing so the error says where to create it;
    2. comfyui_controlnet_aux's checkpoint folder, when that pack is installed: $AUX_ANNOTATOR_CKPTS_PATH
       if set, and the `ckpts/` folder of a comfyui_controlnet_aux folder under custom_nodes
       (it keeps files as ckpts/<hf repo id>/<file>), so users of that pack need no second copy.
    """
    register_model_folder(ANNOTATOR_FOLDER, extensions=(".safetensors", ".pt", ".pth", ".json"))
    dirs: List[str] = list(folder_locations(ANNOTATOR_FOLDER))
    aux_env = os.environ.get("AUX_ANNOTATOR_CKPTS_PATH", "").strip()
    if aux_env and os.path.isdir(aux_env):
        dirs.append(aux_env)
    custom_nodes = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]  # the folder holding this pack
    if host.folder_paths is not None:
        try:
            custom_nodes.extend(host.folder_paths.get_folder_paths("custom_nodes"))
        except KeyError:
            pass
    for parent in custom_nodes:
        try:
            entries = sorted(os.listdir(parent))
        except OSError:
            continue
        for entry in entries:
            # The git clone is comfyui_controlnet_aux; ComfyUI-Manager/zip installs may vary the case or add -main.
            if entry.lower().replace("-", "_").startswith("comfyui_controlnet_aux"):
                ckpts = os.path.join(parent, entry, "ckpts")
                if os.path.isdir(ckpts):
                    dirs.append(ckpts)
    unique: List[str] = []
    for d in dirs:
        if os.path.normcase(os.path.abspath(d)) not in {os.path.normcase(os.path.abspath(u)) for u in unique}:
            unique.append(d)
    return unique


def input_directory() -> str:
    """ComfyUI's input folder (--input-directory); where Load Image Folder resolves relative folders."""
    from ...zrealism_core.errors import InputError

    if host.folder_paths is None:
        raise InputError("a folder relative to ComfyUI's input directory needs ComfyUI's folder_paths; "
                         "give an absolute path, or run this node inside ComfyUI.")
    return host.folder_paths.get_input_directory()


def save_path(filename_prefix: str, ext: str, width: int = 0, height: int = 0) -> Tuple[str, str, str]:
    """(full path, subfolder, file name) of the next `<prefix>_<counter>_.<ext>` in ComfyUI's output
    folder, by ComfyUI's own rule (folder_paths.get_save_image_path: sub-folders in the prefix, the
    %year%/%month%/%day%/%hour%/%minute%/%second%/%width%/%height% tokens, the counter after the
    highest one, nothing outside the output folder)."""
    from ...zrealism_core.errors import InputError

    if host.folder_paths is None:
        raise InputError("saving needs ComfyUI's folder_paths (run this node inside ComfyUI).")
    prefix = (filename_prefix or "").strip() or "ZRealism/clip"
    try:
        folder, name, counter, subfolder, _ = host.folder_paths.get_save_image_path(
            prefix, host.folder_paths.get_output_directory(), int(width), int(height))
    except Exception as exc:  # ComfyUI raises a bare Exception for a prefix that leaves the output folder
        if "outside the output folder" in str(exc):
            raise InputError(f"filename_prefix {filename_prefix!r} points outside the output folder; "
                             "use a relative name like 'ZRealism/clip'.") from None
        raise
    file_name = f"{name}_{counter:05}_.{ext}"
    return os.path.join(folder, file_name), subfolder.replace(os.sep, "/"), file_name


def list_base_models() -> List[str]:
    """Checkpoint files plus diffusers folders (marked with a prefix) for the loader's combo."""
    return list_models("checkpoints") + diffusers_folders("diffusers")


MAX_WALK_DEPTH = 6  # models/<folder>/<org>/<repo>/<sub>/...: deep enough for any layout people use


def walk_models(root_dir: str, max_depth: int = MAX_WALK_DEPTH) -> Iterable[tuple]:
    """os.walk for model dropdowns: follows symlinked folders (people link model stores in) but enters
    each real folder once, so a symlink loop cannot hang /object_info, and stops `max_depth` levels down."""
    seen = set()
    for root, dirs, files in os.walk(root_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        rel = os.path.relpath(root, root_dir)
        if (0 if rel == "." else rel.count(os.sep) + 1) >= max_depth:
            dirs[:] = []
        dirs.sort()
        yield root, dirs, files


def _diffusers_marker_ok(folder_path: str, marker: str, class_name: Optional[str]) -> bool:
    path = os.path.join(folder_path, marker)
    if not os.path.isfile(path):
        return False
    if class_name is None:
        return True
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("_class_name") == class_name
    except (OSError, ValueError):
        return False


def diffusers_folders(folder: str, marker: str = "model_index.json", class_name: Optional[str] = None) -> List[str]:
    """`[diffusers] <sub-folder>` entries for the diffusers models in a ComfyUI model folder: every
    sub-folder (any depth) holding `marker` (model_index.json for a pipeline, config.json for one
    model, whose `_class_name` must then be `class_name` when given)."""
    found: List[str] = []
    for root_dir in folder_locations(folder):
        if not os.path.isdir(root_dir):
            continue
        for root, _dirs, files in walk_models(root_dir):
            if marker in files and _diffusers_marker_ok(root, marker, class_name):
                found.append(DIFFUSERS_PREFIX + os.path.relpath(root, root_dir).replace(os.sep, "/"))
    return sorted(set(found))


def resolve_diffusers_folder(folder: str, name: str, marker: str = "model_index.json") -> Optional[str]:
    """Full path of a `[diffusers] <sub-folder>` entry of `folder` (see diffusers_folders), or None."""
    if not name.startswith(DIFFUSERS_PREFIX):
        return None
    rel = name[len(DIFFUSERS_PREFIX):]
    for root_dir in folder_locations(folder):
        path = os.path.join(root_dir, rel)
        if os.path.isfile(os.path.join(path, marker)):
            return path
    return None


def resolve_base_model(name: str) -> Optional[str]:
    """Full path of a checkpoint file or a `[diffusers] folder` entry, or None."""
    if name.startswith(DIFFUSERS_PREFIX):
        return resolve_diffusers_folder("diffusers", name)
    return resolve_model("checkpoints", name)
