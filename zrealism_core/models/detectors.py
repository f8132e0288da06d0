"""Loaded detectors: the per-process cache, the per-pipeline DetectorStore, and MiDaS / OpenPose loading.

Files are found by models/annotators.py; Depth Anything's loading and key conversion are in
models/depth_anything.py. Loaded detectors stay cached per (kind, path, device) until
unload_detectors(), or live in the DetectorStore active in `using_store(store)` (inside ComfyUI one
per pipeline, see nodes/bridge).
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ..errors import ModelFileError
from . import annotators

log = logging.getLogger("zrealism")



# What a damaged or wrong .pt/.pth file raises inside controlnet-aux's loaders.
LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError)


_cache: Dict[Tuple[str, Any, str], Any] = {}


_cache_lock = threading.Lock()


def openpose(annotator_dirs: Optional[Iterable[Any]], dev: str, include_hand: bool, include_face: bool) -> Any:
    files = annotators.locate_openpose(annotator_dirs, include_hand=include_hand, include_face=include_face)
    key = ("openpose", tuple(str(p) for p in files.values()), dev)
    return cached(key, lambda: load_openpose(files, dev))


def unload_detectors() -> int:
    """Drop every cached detector (frees their memory); returns how many there were."""
    with _cache_lock:
        n = len(_cache)
        _cache.clear()
    return n


class DetectorStore(dict):
    """Where loaded detectors are kept while `using_store(store)` is active (instead of this module's
    cache): inside ComfyUI one per pipeline, so the detectors live exactly as long as the pipeline that
    ComfyUI's node cache holds. `on_load(key, detector)` is called after a load, `before_use(key,
    detector)` before every use (the ComfyUI bridge registers and loads them with its memory manager)."""

    on_load: Any = None
    before_use: Any = None


_store: "contextvars.ContextVar[Optional[DetectorStore]]" = contextvars.ContextVar("zrealism_detector_store", default=None)


@contextlib.contextmanager
def using_store(store: Optional[DetectorStore]) -> Iterator[None]:
    """Keep the detectors loaded inside the block in `store` (None: this module's cache)."""
    token = _store.set(store)
    try:
        yield
    finally:
        _store.reset(token)


def detector_modules(detector: Any) -> List[Any]:
    """The torch modules inside a loaded detector (a model, a (model, processor) pair, or a
    controlnet-aux detector with .model / .body_estimation.model ... attributes)."""
    import torch

    found: List[Any] = []

    def walk(obj: Any, depth: int) -> None:
        if isinstance(obj, torch.nn.Module):
            if not any(obj is f for f in found):
                found.append(obj)
        elif isinstance(obj, (tuple, list)):
            for o in obj:
                walk(o, depth)
        elif depth < 2 and hasattr(obj, "__dict__"):
            for v in vars(obj).values():
                walk(v, depth + 1)

    walk(detector, 0)
    return found


def cached(key: Tuple[str, Any, str], load) -> Any:
    store = _store.get()
    cache = _cache if store is None else store
    with _cache_lock:  # one load at a time: two nodes asking at once must not load twice
        # keep our own reference: ComfyUI's unload may drop the store's entry at any time (see bridge.detector_store)
        detector = cache.get(key)
        if detector is None:
            start = time.perf_counter()
            detector = load()
            cache[key] = detector
            log.info("loaded %s detector from %s on %s in %.2f s", key[0], key[1], key[2], time.perf_counter() - start)
            if store is not None and store.on_load is not None:
                store.on_load(key, detector)
    if store is not None and store.before_use is not None:
        store.before_use(key, detector)
    return detector


def load_midas(path: Path, device: str):
    from controlnet_aux import MidasDetector

    check_weights_only([path])
    try:
        # A folder that exists + a file name inside it: controlnet-aux joins them and never downloads.
        detector = MidasDetector.from_pretrained(str(path.parent), model_type="dpt_hybrid", filename=path.name)
    except LOAD_ERRORS as exc:
        raise ModelFileError(
            f"MiDaS file {path} could not be loaded ({type(exc).__name__}: {exc}). Re-download "
            f"{annotators.MIDAS_FILE.url}."
        ) from exc
    return detector.to(device)


def load_openpose(files: Dict[str, Path], device: str):
    """OpenposeDetector with the body model and only the hand / face models in `files` (controlnet-aux's
    from_pretrained always reads all three; the detector only touches hands / face when asked to)."""
    from controlnet_aux.open_pose import Body, Face, Hand, OpenposeDetector

    check_weights_only(list(files.values()))
    hand_path, face_path = files.get(annotators.OPENPOSE_HAND.name), files.get(annotators.OPENPOSE_FACE.name)
    try:
        detector = OpenposeDetector(
            Body(str(files[annotators.OPENPOSE_BODY.name])),
            Hand(str(hand_path)) if hand_path else None,
            Face(str(face_path)) if face_path else None,
        )
    except LOAD_ERRORS as exc:
        names = ", ".join(str(p) for p in files.values())
        raise ModelFileError(
            f"OpenPose files could not be loaded ({type(exc).__name__}: {exc}). Files: {names}. Re-download them from "
            f"https://huggingface.co/{annotators.OPENPOSE_REPO}."
        ) from exc
    for part in (detector.body_estimation, detector.hand_estimation, detector.face_estimation):
        if part is not None:
            part.to(device)
    return detector


def check_weights_only(paths) -> None:
    """controlnet-aux calls torch.load with torch's default, which is weights_only=True only from
    torch 2.6 on. On older torch, first read each file with weights_only=True so a file holding
    code is refused before controlnet-aux would unpickle it."""
    import torch

    major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    if (major, minor) >= (2, 6):
        return
    for path in paths:
        try:
            torch.load(str(path), map_location="cpu", weights_only=True)
        except LOAD_ERRORS as exc:
            raise ModelFileError(
                f"{path} is not a plain weights file that loads with weights_only=True ({type(exc).__name__}: {exc}); "
                "Z-Realism never unpickles arbitrary objects. Re-download it from its Hugging Face repo."
            ) from exc
