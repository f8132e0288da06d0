"""Where the control-map detectors' weight files are, and what to tell the user when they are not.

Nothing here downloads anything: the user puts the files in a folder by hand (ComfyUI's
`models/zrealism_annotators/`, comfyui_controlnet_aux's `ckpts/` folder, or any folder named in
the `ZREALISM_ANNOTATORS` environment variable) and we search those folders, in order.

Search rules (the same for every detector):
- the caller's folders come first, in the order given, then the `ZREALISM_ANNOTATORS` folders
  (separated by os.pathsep);
- each folder is searched recursively, breadth-first and alphabetically, down to MAX_DEPTH
  levels and at most MAX_DIRS folders, so that comfyui_controlnet_aux's
  `ckpts/<hf repo id>/<file>` layout and a Hugging Face snapshot folder are both found, while a
  mistaken folder such as a whole drive cannot stall a run;
- the first folder (in that order) that has the file wins.
"""
from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import ModelFileError

ENV_VAR = "ZREALISM_ANNOTATORS"
ANNOTATOR_FOLDER = "zrealism_annotators"  # the ComfyUI model folder name (models/zrealism_annotators)
MAX_DEPTH = 4  # root/<org>/<repo>/snapshots/<hash> is four levels
MAX_DIRS = 2000

PathLike = Union[str, "os.PathLike[str]"]

OPENPOSE_REPO = "lllyasviel/Annotators"
DEPTH_ANYTHING_REPO = "depth-anything/Depth-Anything-V2-Small-hf"


@dataclass(frozen=True)
class AnnotatorFile:
    """One file a detector needs, and where the user gets it."""

    name: str
    repo_id: str
    size: str  # for the error message and README: tells the user they have the right file
    purpose: str

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.name}"


OPENPOSE_FILES: Tuple[AnnotatorFile, ...] = (
    AnnotatorFile("body_pose_model.pth", OPENPOSE_REPO, "209 MB", "OpenPose body"),
    AnnotatorFile("hand_pose_model.pth", OPENPOSE_REPO, "147 MB", "OpenPose hands (only needed when hands are drawn)"),
    AnnotatorFile("facenet.pth", OPENPOSE_REPO, "154 MB", "OpenPose face (only needed when the face is drawn)"),
)
OPENPOSE_BODY, OPENPOSE_HAND, OPENPOSE_FACE = OPENPOSE_FILES


def openpose_files(include_hand: bool = False, include_face: bool = False) -> Tuple[AnnotatorFile, ...]:
    """The OpenPose files a detection needs: the body model, plus hands / face only when they are drawn."""
    return (OPENPOSE_BODY,) + ((OPENPOSE_HAND,) if include_hand else ()) + ((OPENPOSE_FACE,) if include_face else ())

MIDAS_FILE = AnnotatorFile("dpt_hybrid-midas-501f0c75.pt", OPENPOSE_REPO, "493 MB", "MiDaS DPT-Hybrid depth (slow on CPU)")
# A Depth Anything folder is a transformers save_pretrained folder: these files together.
DEPTH_ANYTHING_FILES: Tuple[AnnotatorFile, ...] = (
    AnnotatorFile("config.json", DEPTH_ANYTHING_REPO, "1 kB", "Depth Anything V2 Small config"),
    AnnotatorFile("model.safetensors", DEPTH_ANYTHING_REPO, "99 MB", "Depth Anything V2 Small weights (fast depth)"),
    AnnotatorFile("preprocessor_config.json", DEPTH_ANYTHING_REPO, "1 kB", "Depth Anything image processor settings (optional)"),
)
DEPTH_ANYTHING_REQUIRED = ("config.json", "model.safetensors")
DEPTH_ANYTHING_FOLDER = "Depth-Anything-V2-Small-hf"  # suggested sub-folder name in the docs/errors
# The original (non-transformers) checkpoint, as comfyui_controlnet_aux keeps it under
# ckpts/depth-anything/Depth-Anything-V2-Small/; converted to transformers in memory when loaded.
DEPTH_ANYTHING_ORIGINAL = AnnotatorFile(
    "depth_anything_v2_vits.pth", "depth-anything/Depth-Anything-V2-Small", "99 MB",
    "Depth Anything V2 Small, original layout (comfyui_controlnet_aux's file; used as is)",
)


def search_dirs(annotator_dirs: Optional[Iterable[PathLike]] = None) -> List[Path]:
    """The folders to search, in order: the caller's, then ZREALISM_ANNOTATORS's; duplicates dropped."""
    ordered: List[Path] = []
    given: List[PathLike] = []
    if annotator_dirs is not None:
        if isinstance(annotator_dirs, (str, os.PathLike)):
            given.append(annotator_dirs)  # one folder given as a plain string: accept it
        else:
            given.extend(annotator_dirs)
    env = os.environ.get(ENV_VAR, "")
    given.extend(p for p in env.split(os.pathsep) if p.strip())
    seen = set()
    for entry in given:
        path = Path(os.path.expanduser(str(entry))).absolute()
        key = os.path.normcase(str(path))
        if key not in seen:
            seen.add(key)
            ordered.append(path)
    return ordered


def _walk(root: Path) -> Iterator[Path]:
    """Folders under root (root first), breadth-first, alphabetical, bounded by MAX_DEPTH/MAX_DIRS."""
    if not root.is_dir():
        return
    queue = deque([(root, 0)])
    visited = 0
    seen_real = set()
    while queue and visited < MAX_DIRS:
        folder, depth = queue.popleft()
        try:
            real = os.path.realpath(folder)
        except OSError:
            continue
        if real in seen_real:  # symlink loops
            continue
        seen_real.add(real)
        visited += 1
        yield folder
        if depth >= MAX_DEPTH:
            continue
        try:
            children = sorted(
                (e for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir()),
                key=lambda e: e.name.lower(),
            )
        except OSError:  # unreadable folder: skip it, the error message still lists the root
            continue
        queue.extend((Path(e.path), depth + 1) for e in children)


def find_file(name: str, dirs: Sequence[Path]) -> Optional[Path]:
    """First `name` under the folders, in folder order (see the module docstring)."""
    for root in dirs:
        for folder in _walk(root):
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def _is_depth_anything_folder(folder: Path) -> bool:
    if not all((folder / f).is_file() for f in DEPTH_ANYTHING_REQUIRED):
        return False
    try:
        with open(folder / "config.json", "r", encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "depth_anything"


def find_depth_anything(dirs: Sequence[Path]) -> Optional[Path]:
    """First Depth Anything V2 Small, in search order: a transformers folder (config.json with
    model_type depth_anything + model.safetensors) -> that folder, or the original-layout
    depth_anything_v2_vits.pth -> that file. In one folder the transformers layout wins."""
    for root in dirs:
        for folder in _walk(root):
            if _is_depth_anything_folder(folder):
                return folder
            original = folder / DEPTH_ANYTHING_ORIGINAL.name
            if original.is_file():
                return original
    return None


def find_openpose(dirs: Sequence[Path], include_hand: bool = False, include_face: bool = False) -> Optional[Dict[str, Path]]:
    """Paths of the needed OpenPose files (each from the first folder that has it), or None."""
    found = {f.name: find_file(f.name, dirs) for f in openpose_files(include_hand, include_face)}
    if any(p is None for p in found.values()):
        return None
    return found  # type: ignore[return-value]


def find_midas(dirs: Sequence[Path]) -> Optional[Path]:
    return find_file(MIDAS_FILE.name, dirs)


def _folders_text(dirs: Sequence[Path]) -> str:
    if not dirs:
        return (
            "  (no folder to search: in ComfyUI put the files in models/zrealism_annotators/; standalone, "
            f"pass annotator folders or set the {ENV_VAR} environment variable)"
        )
    lines = []
    for d in dirs:
        note = "" if d.is_dir() else "   (does not exist)"
        lines.append(f"  - {d}{note}")
    return "\n".join(lines)


def _where_text(dirs: Sequence[Path]) -> str:
    target = str(dirs[0]) if dirs else "ComfyUI/models/zrealism_annotators"
    return target


def missing_error(what: str, missing: Sequence[AnnotatorFile], dirs: Sequence[Path], *, folder_hint: Optional[str] = None,
                  alternatives: str = "") -> ModelFileError:
    """A ModelFileError naming every missing file, every folder searched and where to download each file."""
    where = _where_text(dirs)
    if folder_hint:
        where = os.path.join(where, folder_hint)
    files = "\n".join(f"  - {f.name} ({f.size}, {f.purpose}): {f.url}" for f in missing)
    repos = sorted({f.repo_id for f in missing})
    msg = (
        f"{what}: annotator files not found.\nMissing:\n{files}\n"
        f"Searched these folders (and their sub-folders, {MAX_DEPTH} levels deep):\n{_folders_text(dirs)}\n"
        f"Download the files by hand from Hugging Face ({', '.join(repos)}) and put them in {where} "
        "(comfyui_controlnet_aux's ckpts/<repo id>/ layout is found too). Z-Realism never downloads anything."
    )
    if alternatives:
        msg += "\n" + alternatives
    return ModelFileError(msg)


def locate_openpose(annotator_dirs: Optional[Iterable[PathLike]] = None, *, include_hand: bool = False,
                    include_face: bool = False) -> Dict[str, Path]:
    """The OpenPose files a detection needs (body; hands/face only when drawn), or ModelFileError naming
    the missing ones among those."""
    dirs = search_dirs(annotator_dirs)
    needed = openpose_files(include_hand, include_face)
    found = {f.name: find_file(f.name, dirs) for f in needed}
    missing = [f for f in needed if found[f.name] is None]
    if missing:
        raise missing_error(
            "OpenPose (pose map)", missing, dirs,
            alternatives="Or connect a pose map made elsewhere to the sampler's pose_map input to skip detection.",
        )
    return found  # type: ignore[return-value]


def locate_depth(method: str, annotator_dirs: Optional[Iterable[PathLike]] = None) -> Tuple[str, Path]:
    """(method, path) for depth: "depth_anything" -> its folder, "midas" -> the .pt file.

    "auto" picks Depth Anything if its folder is found in any search folder, else MiDaS.
    """
    dirs = search_dirs(annotator_dirs)
    if method in ("auto", "depth_anything"):
        folder = find_depth_anything(dirs)
        if folder is not None:
            return "depth_anything", folder
    if method in ("auto", "midas"):
        path = find_midas(dirs)
        if path is not None:
            return "midas", path
    da_missing = [f for f in DEPTH_ANYTHING_FILES if f.name in DEPTH_ANYTHING_REQUIRED or f.name == "preprocessor_config.json"]
    skip = "Or connect a depth map made elsewhere to the sampler's depth_map input to skip detection."
    da_alt = (f"Instead of the transformers files, comfyui_controlnet_aux's {DEPTH_ANYTHING_ORIGINAL.name} "
              f"(https://huggingface.co/{DEPTH_ANYTHING_ORIGINAL.repo_id}) works too.")
    if method == "depth_anything":
        raise missing_error("Depth Anything V2 (depth map)", da_missing, dirs, folder_hint=DEPTH_ANYTHING_FOLDER,
                            alternatives=da_alt + " " + skip)
    if method == "midas":
        raise missing_error("MiDaS DPT-Hybrid (depth map)", [MIDAS_FILE], dirs, alternatives=skip)
    raise missing_error(
        "Depth map (method auto: Depth Anything V2 Small, else MiDaS)",
        list(da_missing) + [MIDAS_FILE], dirs,
        folder_hint=None,
        alternatives=(
            f"Either set is enough: the Depth Anything files together in one sub-folder (e.g. {DEPTH_ANYTHING_FOLDER}/; "
            f"fast, recommended), or {MIDAS_FILE.name} (slow on CPU). " + da_alt + " " + skip
        ),
    )
