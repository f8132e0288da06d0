"""Depth and OpenPose control maps from the prepared image, with detectors loaded from local files.

    depth_map(image, method="auto" | "depth_anything" | "midas", annotator_dirs=[...]) -> H,W,3 float32
    pose_map(image, annotator_dirs=[...], mask=None) -> H,W,3 float32
    prepare_maps(image, depth=..., pose=...) -> ControlMaps(depth, pose): what the still and the clip
        are guided by: given maps resized to the image, missing ones detected
    detail_hint(image, "tile" | "canny" | "lineart") -> H,W,3 float32   (weight-free; control/hints.py)

Both return a map of the input's size, in 0..1, in the convention the SD1.5 ControlNets were
trained on: depth is grayscale with near = bright (both detectors predict relative inverse
depth), pose is the OpenPose skeleton drawn on black.

Detectors:
- "depth_anything": Depth Anything V2 Small through transformers, from a save_pretrained folder
  (config.json + model.safetensors [+ preprocessor_config.json]), or from the original-layout
  depth_anything_v2_vits.pth that comfyui_controlnet_aux keeps (converted in memory when loaded:
  same weights, transformers names, fused qkv split). The fast option on CPU.
- "midas": controlnet-aux MidasDetector (DPT-Hybrid) from dpt_hybrid-midas-501f0c75.pt. Slow on CPU.
- pose: controlnet-aux OpenposeDetector from body_pose_model.pth; hand_pose_model.pth and facenet.pth
  only when hands / face are drawn. With a character mask it runs on the character's crop.

Files are found by zrealism_core.models.annotators (see its docstring for the search order). Nothing is
ever downloaded: controlnet-aux's from_pretrained only goes to the hub when it is NOT given an
existing folder, so we only ever hand it folders that exist and hold the files. Loaded detectors
stay cached per (kind, path, device) until unload_detectors().
"""
from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np

from ..models import annotators, depth_anything, detectors
from .pose_crop import character_box, detect_on_crop, resize_map
from ..errors import InputError, ModelFileError
from ..imaging.images import ImageLike, resize_rgb, to_rgb, to_uint8
from ..runtime.fallback import check_cancel, stage
from .hints import DETAIL_HINTS, EmptyHintError, detail_hint  # noqa: F401  (public here: the detail net's hints)

log = logging.getLogger("zrealism")

DEPTH_METHODS = ("auto", "depth_anything", "midas")
MIN_RESOLUTION = 64
MAX_RESOLUTION = 2048
DEFAULT_RESOLUTION = 512  # detect_resolution's default: what SD1.5's ControlNets were trained at


# ---------------------------------------------------------------- public API

def depth_map(
    image: ImageLike,
    *,
    method: str = "auto",
    annotator_dirs: Optional[Iterable[Any]] = None,
    resolution: int = DEFAULT_RESOLUTION,
    device: Any = "cpu",
) -> np.ndarray:
    """Depth control map (H,W,3 float32 in 0..1, near = bright) of the input's size.

    method: "depth_anything", "midas", or "auto" (Depth Anything if its folder is found, else MiDaS).
    resolution: the short side the detector sees (the map is resized back to the input's size).
    Raises ModelFileError naming the missing files and the folders searched.
    """
    if method not in DEPTH_METHODS:
        raise InputError(f"depth method {method!r} is unknown; use one of {', '.join(DEPTH_METHODS)}.")
    rgb = to_rgb(image, name="image")
    res = _check_resolution(resolution)
    dev = _device_name(device)
    kind, path = annotators.locate_depth(method, annotator_dirs)
    if kind == "depth_anything":
        loader = depth_anything.load_original if path.is_file() else depth_anything.load_folder
        model, processor = detectors.cached(("depth_anything", str(path), dev), lambda: loader(path, dev))
        start = time.perf_counter()
        depth = depth_anything.run(model, processor, rgb, res)
    else:
        detector = detectors.cached(("midas", str(path), dev), lambda: detectors.load_midas(path, dev))
        start = time.perf_counter()
        raw = detector(to_uint8(rgb), detect_resolution=res, image_resolution=res, output_type="np")
        depth = resize_map(np.asarray(raw, dtype=np.float32)[:, :, 0], rgb.shape[:2], "linear")
    out = _normalise(depth)
    log.info("depth map (%s) %dx%d in %.2f s", kind, rgb.shape[1], rgb.shape[0], time.perf_counter() - start)
    return np.ascontiguousarray(np.repeat(out[:, :, None], 3, axis=2))


def pose_map(
    image: ImageLike,
    *,
    annotator_dirs: Optional[Iterable[Any]] = None,
    resolution: int = DEFAULT_RESOLUTION,
    device: Any = "cpu",
    include_hand: bool = False,
    include_face: bool = False,
    mask: Any = None,
) -> np.ndarray:
    """OpenPose control map (H,W,3 float32 in 0..1, skeleton on black) of the input's size.

    mask (H,W, 1 = character; e.g. the prep mask): detection runs on the character's crop (the
    mask's bounding box padded by 10% and squared, resized so its side is `resolution`) and the
    skeleton is drawn back at full size: a small character gets the detector's whole resolution.
    Without a mask (or with an empty one) the whole image is detected, as before.
    Only the files for what is drawn are loaded: body_pose_model.pth, plus the hand / face models
    when include_hand / include_face. An image in which OpenPose finds nobody gives an all-black
    map (pose_map_is_empty() tells; the engine reports it and switches the pose net off).
    """
    rgb = to_rgb(image, name="image")
    res = _check_resolution(resolution)
    detector = detectors.openpose(annotator_dirs, _device_name(device), include_hand, include_face)
    start = time.perf_counter()
    box = character_box(mask, rgb.shape[:2]) if mask is not None else None
    if box is None:
        raw = detector(
            to_uint8(rgb), detect_resolution=res, image_resolution=res,
            include_body=True, include_hand=include_hand, include_face=include_face, output_type="np",
        )
        skeleton = resize_map(np.asarray(raw, dtype=np.float32) / 255.0, rgb.shape[:2], "linear")
    else:
        from controlnet_aux.open_pose import draw_poses

        poses = detect_on_crop(detector, rgb, box, res, include_hand, include_face)
        skeleton = draw_poses(poses, rgb.shape[0], rgb.shape[1], draw_body=True, draw_hand=include_hand,
                              draw_face=include_face).astype(np.float32) / 255.0
    log.info("pose map %dx%d%s in %.2f s", rgb.shape[1], rgb.shape[0], " (character crop)" if box else "",
             time.perf_counter() - start)
    return np.ascontiguousarray(np.clip(skeleton, 0.0, 1.0).astype(np.float32))


class ControlMaps(NamedTuple):
    """The maps a job is guided by, at the image's size (None: not given and not needed)."""

    depth: Optional[np.ndarray]
    pose: Optional[np.ndarray]


MIN_MAP_SIDE = 64  # a given map's short side must reach this (a quarter of the image's, for images under 256 px)


def _check_map_size(rgb: np.ndarray, kind: str, h: int, w: int) -> np.ndarray:
    """Refuse a given map too small to guide anything (a 1x1 'map' would be silently upscaled)."""
    mh, mw = rgb.shape[:2]
    need = max(1, min(MIN_MAP_SIDE, min(h, w) // 4))
    if min(mh, mw) < need:
        raise InputError(
            f"the {kind} is {mw}x{mh} px: a control map must be at least {need} px on its short side "
            f"({MIN_MAP_SIDE} px, or a quarter of the image's short side for images under {4 * MIN_MAP_SIDE} px; the image is {w}x{h}). Connect a map made at the image's resolution, or disconnect it to detect one."
        )
    return rgb


def prepare_maps(
    image: np.ndarray,
    *,
    depth: Any = None,
    pose: Any = None,
    need_depth: bool = True,
    need_pose: bool = True,
    method: str = "auto",
    annotator_dirs: Optional[Iterable[Any]] = None,
    resolution: int = DEFAULT_RESOLUTION,
    device: Any = "cpu",
    timings: Optional[Dict[str, float]] = None,
    cancel: Any = None,
    mask: Any = None,
) -> ControlMaps:
    """The depth and pose maps for `image` (H,W,3 float, the size the job runs at), for the still
    (engine.transform) and the clip (animation.animate) alike.

    depth / pose: maps the user gave (any size, any image type): resized to the image, never
    detected. A missing map is detected from `image` when it is needed (need_depth / need_pose) and
    left None otherwise. method / resolution / device / annotator_dirs: as in depth_map / pose_map.
    timings: gets a "depth map" / "pose map" entry per detection. cancel: checked after each map.
    mask: the character mask (H,W): pose is then detected on the character's crop (see pose_map).
    """
    h, w = image.shape[:2]
    maps = []
    for kind, given, needed, detect in (
        ("depth map", depth, need_depth,
         lambda: depth_map(image, method=method, annotator_dirs=annotator_dirs, resolution=resolution, device=device)),
        ("pose map", pose, need_pose,
         lambda: pose_map(image, annotator_dirs=annotator_dirs, resolution=resolution, device=device, mask=mask)),
    ):
        if given is not None:
            found = resize_rgb(_check_map_size(to_rgb(given, name=kind), kind, h, w), h, w)
        elif needed:
            with stage(kind, timings):
                found = resize_rgb(detect(), h, w)
        else:
            found = None
        maps.append(found)
        check_cancel(cancel)
    return ControlMaps(*maps)


def pose_keypoints(
    image: ImageLike,
    *,
    annotator_dirs: Optional[Iterable[Any]] = None,
    resolution: int = DEFAULT_RESOLUTION,
    device: Any = "cpu",
    mask: Any = None,
) -> List[List[Optional[Tuple[float, float]]]]:
    """The body keypoints OpenPose finds (one list of 18 COCO parts per person, (x, y) in pixels of
    the input, None = not found), detected like pose_map (on the character crop when a mask is given)."""
    rgb = to_rgb(image, name="image")
    res = _check_resolution(resolution)
    detector = detectors.openpose(annotator_dirs, _device_name(device), False, False)
    h, w = rgb.shape[:2]
    box = character_box(mask, (h, w)) if mask is not None else None
    if box is None:
        from controlnet_aux.util import HWC3, resize_image

        poses = detector.detect_poses(resize_image(HWC3(to_uint8(rgb)), res))
    else:
        poses = detect_on_crop(detector, rgb, box, res, False, False)
    return [[None if k is None else (float(k.x) * w, float(k.y) * h) for k in p.body.keypoints] for p in poses]


def available_depth_method(annotator_dirs: Optional[Iterable[Any]] = None) -> Optional[str]:
    """The method "auto" would use with these folders, or None when neither detector's files are there."""
    try:
        return annotators.locate_depth("auto", annotator_dirs)[0]
    except ModelFileError:
        return None


# ---------------------------------------------------------------- loading


# ---------------------------------------------------------------- running


def _normalise(depth: np.ndarray) -> np.ndarray:
    depth = np.nan_to_num(np.asarray(depth, dtype=np.float32))
    lo, hi = float(depth.min()), float(depth.max())
    if hi - lo < 1e-8:  # a flat prediction carries no geometry: return black, not noise
        return np.zeros_like(depth, dtype=np.float32)
    return ((depth - lo) / (hi - lo)).astype(np.float32)


def _check_resolution(resolution: Any) -> int:
    try:
        res = int(resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution must be a whole number of pixels, got {resolution!r}.") from None
    if not MIN_RESOLUTION <= res <= MAX_RESOLUTION:
        raise InputError(
            f"resolution {res} is out of range: use {MIN_RESOLUTION}..{MAX_RESOLUTION} (512 matches SD1.5's ControlNets)."
        )
    return res


def _device_name(device: Any) -> str:
    import torch

    if device is None or str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device {device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:0' or 'mps'.") from exc
