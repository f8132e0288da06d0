"""Depth and OpenPose control maps from the prepared image, with detectors loaded from local files.

    depth_map(image, method="auto" | "depth_anything" | "midas", annotator_dirs=[...]) -> H,W,3 float32
    pose_map(image, annotator_dirs=[...], mask=None) -> H,W,3 float32
    prepare_maps(image, depth=..., pose=...) -> ControlMaps(depth, pose): what the still and the clip
        are guided by: given maps resized to the image, missing ones detected
    detail_hint(image, "tile" | "canny" | "lineart") -> H,W,3 float32   (weight-free; detail_hints.py)

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

import contextlib
import contextvars
import logging
import pickle
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from .models import annotators
from .errors import InputError, ModelFileError
from .imaging.images import ImageLike, resize_rgb, to_rgb, to_uint8
from .models.runtime import check_cancel, stage
from .detail_hints import DETAIL_HINTS, EmptyHintError, detail_hint  # noqa: F401  (public here: the detail net's hints)

log = logging.getLogger("zrealism")

DEPTH_METHODS = ("auto", "depth_anything", "midas")
MIN_RESOLUTION = 64
MAX_RESOLUTION = 2048
DEFAULT_RESOLUTION = 512  # detect_resolution's default: what SD1.5's ControlNets were trained at

# Depth Anything V2's image processor settings (the -hf repo's preprocessor_config.json), used
# when a folder has no preprocessor_config.json of its own.
_DA_PROCESSOR_DEFAULTS = dict(
    do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
    resample=3, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
)

# What a damaged or wrong .pt/.pth file raises inside controlnet-aux's loaders.
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError)



def depth_anything_v2_small_config():
    """transformers config of Depth Anything V2 Small (as in depth-anything/Depth-Anything-V2-Small-hf)."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
        out_indices=[3, 6, 9, 12], reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=384, patch_size=14, fusion_hidden_size=64,
        neck_hidden_sizes=[48, 96, 192, 384], head_hidden_size=32, depth_estimation_type="relative",
    )


_cache: Dict[Tuple[str, Any, str], Any] = {}
_cache_lock = threading.Lock()


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
        loader = _load_depth_anything_original if path.is_file() else _load_depth_anything
        model, processor = _cached(("depth_anything", str(path), dev), lambda: loader(path, dev))
        start = time.perf_counter()
        depth = _run_depth_anything(model, processor, rgb, res)
    else:
        detector = _cached(("midas", str(path), dev), lambda: _load_midas(path, dev))
        start = time.perf_counter()
        raw = detector(to_uint8(rgb), detect_resolution=res, image_resolution=res, output_type="np")
        depth = _resize(np.asarray(raw, dtype=np.float32)[:, :, 0], rgb.shape[:2], "linear")
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
    detector = _openpose(annotator_dirs, _device_name(device), include_hand, include_face)
    start = time.perf_counter()
    box = character_box(mask, rgb.shape[:2]) if mask is not None else None
    if box is None:
        raw = detector(
            to_uint8(rgb), detect_resolution=res, image_resolution=res,
            include_body=True, include_hand=include_hand, include_face=include_face, output_type="np",
        )
        skeleton = _resize(np.asarray(raw, dtype=np.float32) / 255.0, rgb.shape[:2], "linear")
    else:
        from controlnet_aux.open_pose import draw_poses

        poses = _detect_on_crop(detector, rgb, box, res, include_hand, include_face)
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
    detector = _openpose(annotator_dirs, _device_name(device), False, False)
    h, w = rgb.shape[:2]
    box = character_box(mask, (h, w)) if mask is not None else None
    if box is None:
        from controlnet_aux.util import HWC3, resize_image

        poses = detector.detect_poses(resize_image(HWC3(to_uint8(rgb)), res))
    else:
        poses = _detect_on_crop(detector, rgb, box, res, False, False)
    return [[None if k is None else (float(k.x) * w, float(k.y) * h) for k in p.body.keypoints] for p in poses]


# OpenPose's body colours (controlnet-aux util.draw_bodypose): keypoint i is a full-colour dot, limbs are 0.6x as bright.
_BODY_COLOURS = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0], [0, 255, 85],
    [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255], [170, 0, 255],
    [255, 0, 255], [255, 0, 170], [255, 0, 85]], dtype=np.float32)


def keypoints_from_pose_map(pose: ImageLike) -> List[Optional[Tuple[float, float]]]:
    """The 18 body keypoints (x, y in pixels, None = absent) read back from an OpenPose map's coloured
    dots, so a map the sampler already made need not be detected again (the largest dot per colour)."""
    import cv2

    rgb = to_rgb(pose, name="pose map") * 255.0
    bright = rgb.max(axis=2) > 200.0  # limbs are drawn at 0.6 x 255 = 153 at most
    out: List[Optional[Tuple[float, float]]] = []
    for colour in _BODY_COLOURS:
        hit = (bright & (np.abs(rgb - colour).max(axis=2) < 40.0)).astype(np.uint8)
        n, _, stats, centres = cv2.connectedComponentsWithStats(hit, connectivity=8)
        if n <= 1:
            out.append(None)
            continue
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        out.append((float(centres[best][0]), float(centres[best][1])))
    return out


def pose_map_is_empty(pose: np.ndarray) -> bool:
    """True when a pose map has no skeleton (OpenPose found nobody)."""
    return float(np.asarray(pose).max(initial=0.0)) < 1.0 / 255.0


def character_box(mask: Any, shape_hw: Tuple[int, int], pad: float = 0.1) -> Optional[Tuple[int, int, int]]:
    """(x0, y0, side) of the square crop around the character: the mask's bounding box padded by
    `pad` of its size on every side and squared about its centre (it may reach past the frame).
    None when the mask is empty."""
    from .imaging.images import to_mask

    m = to_mask(mask)
    if m.shape != tuple(shape_hw):  # e.g. the source-size mask of an image rounded to multiples of 8
        m = _resize(m, tuple(shape_hw), "linear")
    m = m > 0.5
    if not m.any():
        log.info("pose: the mask is empty, detecting on the whole image")
        return None
    ys, xs = np.nonzero(m)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = int(np.ceil(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * pad)))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), max(side, 1)


def _detect_on_crop(detector: Any, rgb: np.ndarray, box: Tuple[int, int, int], res: int,
                    include_hand: bool, include_face: bool) -> list:
    """OpenPose on the square crop `box` (white outside the frame: the prepared background), resized to
    res x res; keypoints come back as fractions of the full image."""
    import cv2
    from controlnet_aux.open_pose import BodyResult, Keypoint, PoseResult

    h, w = rgb.shape[:2]
    x0, y0, side = box
    img8 = to_uint8(rgb)
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y0 + side - h), max(0, x0 + side - w)
    crop = img8[max(0, y0):min(h, y0 + side), max(0, x0):min(w, x0 + side)]
    crop = cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    interp = cv2.INTER_AREA if side > res else cv2.INTER_CUBIC
    crop = np.ascontiguousarray(cv2.resize(crop, (res, res), interpolation=interp))
    poses = detector.detect_poses(crop, include_hand, include_face)

    def back(k: Any) -> Any:
        if k is None or k.x < 0 or k.y < 0:  # controlnet-aux marks a missing hand/face point with -1
            return k
        return Keypoint(x=(x0 + k.x * side) / w, y=(y0 + k.y * side) / h)

    def back_all(points: Any) -> Any:
        return None if points is None else [back(k) for k in points]

    return [PoseResult(BodyResult(keypoints=back_all(p.body.keypoints), total_score=p.body.total_score,
                                  total_parts=p.body.total_parts), back_all(p.left_hand), back_all(p.right_hand),
                       back_all(p.face)) for p in poses]


def _openpose(annotator_dirs: Optional[Iterable[Any]], dev: str, include_hand: bool, include_face: bool) -> Any:
    files = annotators.locate_openpose(annotator_dirs, include_hand=include_hand, include_face=include_face)
    key = ("openpose", tuple(str(p) for p in files.values()), dev)
    return _cached(key, lambda: _load_openpose(files, dev))


def available_depth_method(annotator_dirs: Optional[Iterable[Any]] = None) -> Optional[str]:
    """The method "auto" would use with these folders, or None when neither detector's files are there."""
    try:
        return annotators.locate_depth("auto", annotator_dirs)[0]
    except ModelFileError:
        return None


def unload_detectors() -> int:
    """Drop every cached detector (frees their memory); returns how many there were."""
    with _cache_lock:
        n = len(_cache)
        _cache.clear()
    return n


# ---------------------------------------------------------------- loading

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


def _cached(key: Tuple[str, Any, str], load) -> Any:
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


def _load_depth_anything(folder: Path, device: str):
    from safetensors import SafetensorError
    from transformers import DepthAnythingForDepthEstimation, DPTImageProcessor

    try:
        # use_safetensors: never unpickle; local_files_only: never the network.
        model = DepthAnythingForDepthEstimation.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)
        if (folder / "preprocessor_config.json").is_file():
            processor = DPTImageProcessor.from_pretrained(str(folder), local_files_only=True)
        else:
            processor = DPTImageProcessor(**_DA_PROCESSOR_DEFAULTS)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise ModelFileError(
            f"Depth Anything folder {folder} could not be loaded ({type(exc).__name__}: {exc}). It must hold config.json "
            f"and model.safetensors from https://huggingface.co/{annotators.DEPTH_ANYTHING_REPO} (the -hf repo, transformers "
            "layout); re-download them if they are damaged."
        ) from exc
    return model.to(device).train(False), processor


def _load_depth_anything_original(path: Path, device: str):
    """depth_anything_v2_vits.pth (the original repo's layout, which comfyui_controlnet_aux downloads)
    -> transformers DepthAnythingForDepthEstimation, converted in memory (nothing is written)."""
    import torch
    from transformers import DepthAnythingForDepthEstimation

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "pretrained.cls_token" not in state:
            raise ValueError("not a Depth Anything V2 state dict (no pretrained.cls_token)")
        config = _config_from_original(state)
        hf_state = _original_to_transformers(state, config.backbone_config.num_hidden_layers)
        with torch.device("meta"):  # no random init of weights that are loaded right after
            model = DepthAnythingForDepthEstimation(config)
        hf_state = rename_for_model(hf_state, set(model.state_dict()))
        # The mask token is only used in training; tolerate a file saved without it.
        hf_state.setdefault("backbone.embeddings.mask_token", torch.zeros_like(model.backbone.embeddings.mask_token, device="cpu"))
        missing, unexpected = model.load_state_dict(hf_state, strict=False, assign=True)
    except _LOAD_ERRORS + (AttributeError, TypeError) as exc:
        raise ModelFileError(
            f"{path} could not be read as Depth Anything V2 ({type(exc).__name__}: {exc}). Use the file from "
            f"https://huggingface.co/{annotators.DEPTH_ANYTHING_ORIGINAL.repo_id}, or the transformers folder from "
            f"https://huggingface.co/{annotators.DEPTH_ANYTHING_REPO}."
        ) from exc
    if missing:  # a weight left at random init would give a silently wrong depth map
        raise ModelFileError(f"{path} lacks {len(missing)} Depth Anything weights (e.g. {missing[:3]}); re-download it.")
    if unexpected:
        log.warning("%s: ignored %d unexpected keys (e.g. %s)", path, len(unexpected), unexpected[:3])
    from transformers import DPTImageProcessor

    return model.to(device).train(False), DPTImageProcessor(**_DA_PROCESSOR_DEFAULTS)


def _config_from_original(state: Dict[str, Any]):
    """transformers config matching an original Depth Anything V2 state dict (vits/vitb/vitl), read off its shapes."""
    from transformers import DepthAnythingConfig, Dinov2Config

    hidden = int(state["pretrained.cls_token"].shape[-1])
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("pretrained.blocks."))
    mlp = int(state["pretrained.blocks.0.mlp.fc1.weight"].shape[0])
    # Depth Anything V2 taps these encoder layers (1-based): vits/vitb [3,6,9,12], vitl [5,12,18,24].
    out_indices = [5, 12, 18, 24] if layers == 24 else [round(layers * k / 4) for k in range(1, 5)]
    patch = int(state["pretrained.patch_embed.proj.weight"].shape[-1])
    tokens = int(state["pretrained.pos_embed"].shape[1]) - 1
    backbone = Dinov2Config(
        image_size=int(round(tokens ** 0.5)) * patch, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64), mlp_ratio=mlp // hidden, out_indices=out_indices,
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=hidden, patch_size=patch,
        fusion_hidden_size=int(state["depth_head.scratch.layer1_rn.weight"].shape[0]),
        neck_hidden_sizes=[int(state[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)],
        head_hidden_size=int(state["depth_head.scratch.output_conv2.0.weight"].shape[0]),
        depth_estimation_type="relative",
    )


def depth_anything_key_map(num_layers: int):
    """(original name, transformers name) pairs; the qkv split is done separately. Names as in
    transformers' convert_depth_anything_to_hf.py (the same for V1 and V2)."""
    pairs = [
        ("pretrained.cls_token", "backbone.embeddings.cls_token"),
        ("pretrained.mask_token", "backbone.embeddings.mask_token"),
        ("pretrained.pos_embed", "backbone.embeddings.position_embeddings"),
        ("pretrained.patch_embed.proj.weight", "backbone.embeddings.patch_embeddings.projection.weight"),
        ("pretrained.patch_embed.proj.bias", "backbone.embeddings.patch_embeddings.projection.bias"),
        ("pretrained.norm.weight", "backbone.layernorm.weight"),
        ("pretrained.norm.bias", "backbone.layernorm.bias"),
    ]
    block = {"ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1", "norm1": "norm1", "norm2": "norm2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "attn.proj": "attention.output.dense"}
    for i in range(num_layers):
        for src, dst in block.items():
            suffixes = [""] if src.endswith("gamma") else [".weight", ".bias"]
            for sfx in suffixes:
                pairs.append((f"pretrained.blocks.{i}.{src}{sfx}", f"backbone.encoder.layer.{i}.{dst}{sfx}"))
    for i in range(4):
        for sfx in (".weight", ".bias"):
            pairs.append((f"depth_head.projects.{i}{sfx}", f"neck.reassemble_stage.layers.{i}.projection{sfx}"))
            if i != 2:  # the third reassemble stage keeps its size: no resize layer
                pairs.append((f"depth_head.resize_layers.{i}{sfx}", f"neck.reassemble_stage.layers.{i}.resize{sfx}"))
        pairs.append((f"depth_head.scratch.layer{i + 1}_rn.weight", f"neck.convs.{i}.weight"))
    for i in range(1, 5):  # refinenet4 is the first fusion layer
        j = 4 - i
        for sfx in (".weight", ".bias"):
            pairs.append((f"depth_head.scratch.refinenet{i}.out_conv{sfx}", f"neck.fusion_stage.layers.{j}.projection{sfx}"))
            for u in (1, 2):
                for c in (1, 2):
                    pairs.append((f"depth_head.scratch.refinenet{i}.resConfUnit{u}.conv{c}{sfx}",
                                  f"neck.fusion_stage.layers.{j}.residual_layer{u}.convolution{c}{sfx}"))
    for sfx in (".weight", ".bias"):
        pairs += [(f"depth_head.scratch.output_conv1{sfx}", f"head.conv1{sfx}"),
                  (f"depth_head.scratch.output_conv2.0{sfx}", f"head.conv2{sfx}"),
                  (f"depth_head.scratch.output_conv2.2{sfx}", f"head.conv3{sfx}")]
    return pairs


# transformers 5 renamed Dinov2's attention weights; checkpoints on the hub keep the old names
# (transformers converts them when it loads a file, but not in load_state_dict).
_ATTENTION_RENAMES = (
    ("attention.attention.query.", "attention.q_proj."), ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."), ("attention.output.dense.", "attention.o_proj."),
)


def rename_for_model(state: Dict[str, Any], model_keys, *, reverse: bool = False) -> Dict[str, Any]:
    """Map hub-style (transformers 4) Depth Anything names to those `model_keys` uses, or back (reverse=True)."""
    out = {}
    for key, value in state.items():
        for old, new in _ATTENTION_RENAMES:
            src, dst = (new, old) if reverse else (old, new)
            if src in key:
                candidate = key.replace(src, dst)
                if reverse or (key not in model_keys and candidate in model_keys):
                    key = candidate
                break
        out[key] = value
    return out


def _original_to_transformers(state: Dict[str, Any], num_layers: int) -> Dict[str, Any]:
    out = {}
    for src, dst in depth_anything_key_map(num_layers):
        if src in state:
            out[dst] = state[src]
    for i in range(num_layers):  # the original fuses query/key/value into one qkv projection
        w, b = state[f"pretrained.blocks.{i}.attn.qkv.weight"], state[f"pretrained.blocks.{i}.attn.qkv.bias"]
        n = w.shape[0] // 3
        for k, name in enumerate(("query", "key", "value")):
            out[f"backbone.encoder.layer.{i}.attention.attention.{name}.weight"] = w[k * n:(k + 1) * n]
            out[f"backbone.encoder.layer.{i}.attention.attention.{name}.bias"] = b[k * n:(k + 1) * n]
    return out


def _load_midas(path: Path, device: str):
    from controlnet_aux import MidasDetector

    _check_weights_only([path])
    try:
        # A folder that exists + a file name inside it: controlnet-aux joins them and never downloads.
        detector = MidasDetector.from_pretrained(str(path.parent), model_type="dpt_hybrid", filename=path.name)
    except _LOAD_ERRORS as exc:
        raise ModelFileError(
            f"MiDaS file {path} could not be loaded ({type(exc).__name__}: {exc}). Re-download "
            f"{annotators.MIDAS_FILE.url}."
        ) from exc
    return detector.to(device)


def _load_openpose(files: Dict[str, Path], device: str):
    """OpenposeDetector with the body model and only the hand / face models in `files` (controlnet-aux's
    from_pretrained always reads all three; the detector only touches hands / face when asked to)."""
    from controlnet_aux.open_pose import Body, Face, Hand, OpenposeDetector

    _check_weights_only(list(files.values()))
    hand_path, face_path = files.get(annotators.OPENPOSE_HAND.name), files.get(annotators.OPENPOSE_FACE.name)
    try:
        detector = OpenposeDetector(
            Body(str(files[annotators.OPENPOSE_BODY.name])),
            Hand(str(hand_path)) if hand_path else None,
            Face(str(face_path)) if face_path else None,
        )
    except _LOAD_ERRORS as exc:
        names = ", ".join(str(p) for p in files.values())
        raise ModelFileError(
            f"OpenPose files could not be loaded ({type(exc).__name__}: {exc}). Files: {names}. Re-download them from "
            f"https://huggingface.co/{annotators.OPENPOSE_REPO}."
        ) from exc
    for part in (detector.body_estimation, detector.hand_estimation, detector.face_estimation):
        if part is not None:
            part.to(device)
    return detector


def _check_weights_only(paths) -> None:
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
        except _LOAD_ERRORS as exc:
            raise ModelFileError(
                f"{path} is not a plain weights file that loads with weights_only=True ({type(exc).__name__}: {exc}); "
                "Z-Realism never unpickles arbitrary objects. Re-download it from its Hugging Face repo."
            ) from exc


# ---------------------------------------------------------------- running

def _run_depth_anything(model, processor, rgb: np.ndarray, resolution: int) -> np.ndarray:
    import torch

    h, w = rgb.shape[:2]
    dh, dw = _detect_size(h, w, resolution, multiple=14)
    # Explicit size: `resolution` means the short side for every detector (controlnet-aux's convention).
    inputs = processor(
        images=to_uint8(rgb), size={"height": dh, "width": dw}, keep_aspect_ratio=False, return_tensors="pt",
    )
    device = next(model.parameters()).device
    pixels = inputs["pixel_values"].to(device=device, dtype=next(model.parameters()).dtype)
    with torch.inference_mode():
        pred = model(pixel_values=pixels).predicted_depth  # (1, dh, dw) relative inverse depth
        pred = torch.nn.functional.interpolate(pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)
    return pred[0, 0].cpu().numpy()


def _detect_size(h: int, w: int, resolution: int, *, multiple: int) -> Tuple[int, int]:
    scale = resolution / min(h, w)
    return (max(multiple, int(round(h * scale / multiple)) * multiple),
            max(multiple, int(round(w * scale / multiple)) * multiple))


def _normalise(depth: np.ndarray) -> np.ndarray:
    depth = np.nan_to_num(np.asarray(depth, dtype=np.float32))
    lo, hi = float(depth.min()), float(depth.max())
    if hi - lo < 1e-8:  # a flat prediction carries no geometry: return black, not noise
        return np.zeros_like(depth, dtype=np.float32)
    return ((depth - lo) / (hi - lo)).astype(np.float32)


def _resize(arr: np.ndarray, size_hw: Tuple[int, int], mode: str) -> np.ndarray:
    import cv2

    h, w = size_hw
    if arr.shape[:2] == (h, w):
        return arr.astype(np.float32)
    interp = cv2.INTER_LINEAR if mode == "linear" else cv2.INTER_NEAREST
    out = cv2.resize(np.ascontiguousarray(arr, dtype=np.float32), (w, h), interpolation=interp)
    return out.astype(np.float32)


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
