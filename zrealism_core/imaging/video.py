"""Write and read short clips: MP4 (h264), GIF, WebP, or a folder of images.

- MP4 goes through imageio's FFMPEG plugin with the ffmpeg binary that ships inside the
  imageio-ffmpeg wheel (no system ffmpeg, no network). It is written as h264 + yuv420p so every
  player and browser shows it. yuv420p needs even sizes, so an odd width/height is padded by one
  edge-replicated pixel (the read-back clip is then that one pixel larger); sizes that are not
  multiples of 16 are kept as they are (`macro_block_size=1`; imageio would otherwise rescale).
- GIF and WebP are written by Pillow (animated, looping forever).
- Every file is written to a temporary file in the same folder and renamed at the end, so an
  error or a cancel never leaves a half-written clip behind.
- Reading iterates frame by frame: `list(imageio.get_reader(mp4))` raises MemoryError because
  the reader reports an infinite length.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..errors import InputError
from .images import load_image, to_rgb, to_uint8

PathLike = Union[str, Path]

VIDEO_FORMATS = ("mp4", "gif", "webp")
# Containers read through ffmpeg; everything else that is a file goes through Pillow.
_FFMPEG_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}
_PIL_SUFFIXES = {".gif", ".webp", ".png", ".apng", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
DEFAULT_FOLDER_FPS = 8.0


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"fps must be a number, got {fps!r}.") from None
    if not np.isfinite(value) or value <= 0 or value > 240:
        raise InputError(f"fps must be between 0 and 240 (exclusive of 0); got {fps!r}.")
    return value


def _frames_uint8(frames: Iterable[Any]) -> Iterator[np.ndarray]:
    """Validate and convert frames one at a time (float 0..1, uint8, PIL; all the same size)."""
    size: Optional[Tuple[int, int]] = None
    for i, frame in enumerate(frames):
        rgb = to_rgb(frame, name=f"frame {i}")
        if size is None:
            size = rgb.shape[:2]
        elif rgb.shape[:2] != size:
            raise InputError(
                f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]} but frame 0 is {size[1]}x{size[0]}; "
                "all frames of a clip must have the same size."
            )
        yield to_uint8(rgb)


def _as_frame_list(frames: Any) -> List[Any]:
    if frames is None:
        raise InputError("frames is missing: pass a list of H,W,3 images or an N,H,W,3 array.")
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3 and frames.shape[-1] not in (1, 3, 4):
            raise InputError(f"frames array must be N,H,W,3; got shape {frames.shape}.")
        if frames.ndim == 3:  # one H,W,C image
            return [frames]
        if frames.ndim != 4:
            raise InputError(f"frames array must be N,H,W,3; got shape {frames.shape}.")
        return list(frames)
    items = list(frames)
    if not items:
        raise InputError("frames is empty: a clip needs at least one frame.")
    return items


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """yuv420p subsamples chroma 2x2, so ffmpeg refuses odd sizes: replicate the last row/column."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_mp4(frames: List[Any], tmp: str, fps: float, quality: Optional[float]) -> None:
    import imageio.v2 as imageio

    writer = imageio.get_writer(
        tmp,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        quality=quality,
        macro_block_size=1,  # keep the real size; imageio would otherwise rescale to /16
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"],  # playable while still loading in a browser
    )
    try:
        for frame in _frames_uint8(frames):
            writer.append_data(_pad_even(frame))
    finally:
        writer.close()


def _write_pil(frames: List[Any], tmp: str, fps: float, fmt: str) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in _frames_uint8(frames)]
    duration = int(round(1000.0 / fps))
    options = dict(save_all=True, append_images=images[1:], duration=duration, loop=0)
    if fmt == "WEBP":
        options.update(lossless=False, quality=90, method=4)
    else:
        options.update(optimize=False, disposal=2)
    images[0].save(tmp, format=fmt, **options)


def write_video(frames: Any, path: PathLike, fps: float = 8.0, *, quality: Optional[float] = 8.0) -> Path:
    """Write frames (list of H,W,3 float 0..1 / uint8 / PIL, or an N,H,W,3 array) as a clip.

    The suffix picks the format: .mp4 (h264, yuv420p), .gif or .webp. The folder is created.
    `quality` (0..10, MP4 only) is imageio's scale; 8 is visually clean at small sizes.
    Returns the path written.
    """
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if fmt not in VIDEO_FORMATS:
        raise InputError(f"cannot write a video as {p.name!r}: use a .mp4, .gif or .webp file name.")
    fps = _check_fps(fps)
    items = _as_frame_list(frames)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Temp file in the same folder (same file system, so the rename is atomic); it keeps the
    # suffix because ffmpeg picks the container from it.
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part.{fmt}", dir=str(p.parent))
    os.close(fd)
    try:
        if fmt == "mp4":
            _write_mp4(items, tmp, fps, quality)
        else:
            _write_pil(items, tmp, fps, fmt.upper())
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


# ---------------------------------------------------------------- reading

def _read_ffmpeg(p: Path, max_frames: Optional[int]) -> Tuple[List[np.ndarray], float]:
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(str(p), format="FFMPEG")
    except Exception as exc:  # imageio raises several types for unreadable files
        raise InputError(f"cannot read video {p}: {exc}") from exc
    try:
        fps = float(reader.get_meta_data().get("fps") or DEFAULT_FOLDER_FPS)
        frames: List[np.ndarray] = []
        for frame in reader.iter_data():  # never list(reader): its length is inf
            frames.append(np.asarray(frame[:, :, :3], dtype=np.float32) / 255.0)
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        reader.close()
    return frames, fps


def _read_pil(p: Path, max_frames: Optional[int]) -> Tuple[List[np.ndarray], float]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        img = Image.open(p)
    except UnidentifiedImageError as exc:
        raise InputError(f"{p} is not an image or animation Pillow can read.") from exc
    frames: List[np.ndarray] = []
    durations: List[float] = []
    with img:
        for frame in ImageSequence.Iterator(img):
            # convert each frame fully (GIF frames may be palette/partial frames); loading the frame
            # also fills info["duration"] (WebP sets it only then)
            rgba = frame.convert("RGBA")
            durations.append(float(frame.info.get("duration") or 0))
            frames.append(to_rgb(rgba, name=f"{p.name} frame {len(frames)}"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    positive = [d for d in durations if d > 0]
    fps = 1000.0 / float(np.median(positive)) if positive else DEFAULT_FOLDER_FPS
    return frames, fps


def _read_folder(p: Path, max_frames: Optional[int], fps: float) -> Tuple[List[np.ndarray], float]:
    from .folder import image_files

    files = image_files(p, limit=max_frames or 0)
    frames: List[np.ndarray] = []
    for f in files:
        rgb = to_rgb(load_image(f, name="frame"), name=f"frame {f.name}")
        if frames and rgb.shape != frames[0].shape:
            raise InputError(
                f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]} but {files[0].name} is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames must have the same size."
            )
        frames.append(rgb)
    return frames, fps


def read_video(
    path: PathLike, *, max_frames: Optional[int] = None, folder_fps: float = DEFAULT_FOLDER_FPS
) -> Tuple[List[np.ndarray], float]:
    """Read a clip as (list of H,W,3 float32 frames in 0..1, fps).

    Accepts MP4 (and other ffmpeg containers: .mov .mkv .webm .avi), GIF, WebP, a single image
    (one frame), or a folder of images (natural sort order: frame_2 before frame_10; the fps of a
    folder is `folder_fps`). `max_frames` stops early to bound memory.
    """
    p = Path(path)
    if max_frames is not None and max_frames < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}.")
    if p.is_dir():
        frames, fps = _read_folder(p, max_frames, _check_fps(folder_fps))
    elif not p.is_file():
        raise InputError(f"video not found: {p}")
    else:
        suffix = p.suffix.lower()
        if suffix in _FFMPEG_SUFFIXES:
            frames, fps = _read_ffmpeg(p, max_frames)
        elif suffix in _PIL_SUFFIXES:
            frames, fps = _read_pil(p, max_frames)
        else:
            raise InputError(
                f"cannot read {p.name!r}: use an .mp4/.mov/.mkv/.webm/.avi, .gif, .webp or image file, or a folder of images."
            )
    if not frames:
        raise InputError(f"{p} holds no frames.")
    return frames, fps
