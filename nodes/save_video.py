"""ZRealism_SaveVideo: IMAGE frames -> MP4 (h264, yuv420p) / GIF / WebP in ComfyUI's output folder, with a
preview in the UI (core: zrealism_core.imaging.video.write_video)."""
from __future__ import annotations

import os
import re
from typing import Any, Dict

from . import bridge
from ..zrealism_core.errors import InputError
from ..zrealism_core.imaging.video import VIDEO_FORMATS


def next_path(output_dir: str, filename_prefix: str, ext: str) -> tuple:
    """(full path, subfolder, file name) for `<prefix>_<counter>_.<ext>` like ComfyUI's savers: the prefix
    may hold sub-folders ("ZRealism/clip"); the counter continues after the highest existing one."""
    prefix = (filename_prefix or "ZRealism").strip().replace("\\", "/")
    subfolder, base = os.path.split(prefix)
    base = base or "clip"
    root = os.path.abspath(output_dir)
    folder = os.path.abspath(os.path.join(root, subfolder))
    if os.path.commonpath([root, folder]) != root:
        raise InputError(f"filename_prefix {filename_prefix!r} points outside the output folder; use a relative name like 'ZRealism/clip'.")
    rx = re.compile(re.escape(base) + r"_(\d+)_\." + re.escape(ext) + "$")
    counter = 1
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            m = rx.match(name)
            if m:
                counter = max(counter, int(m.group(1)) + 1)
    name = f"{base}_{counter:05}_.{ext}"
    rel = os.path.relpath(folder, root)
    return os.path.join(folder, name), "" if rel == "." else rel.replace(os.sep, "/"), name


class ZRealism_SaveVideo:
    DESCRIPTION = (
        "Save frames as a video in ComfyUI's output folder and preview it: MP4 (h264, yuv420p - plays everywhere), "
        "GIF or WebP (animated, looping). Uses the ffmpeg that ships inside the imageio-ffmpeg package; nothing else "
        "to install. Odd frame sizes are padded by one pixel for MP4 (h264 needs even sizes)."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the saved file.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": ("IMAGE", {"tooltip": "The frames to save, in order (e.g. Z-Realism AnimateDiff Fuse's frames output)."}),
                "fps": ("FLOAT", {"default": 8.0, "min": 1.0, "max": 60.0, "step": 1.0,
                                  "tooltip": "Playback frame rate (connect AnimateDiff Fuse's fps output)."}),
                "format": (list(VIDEO_FORMATS), {"default": "mp4",
                                                 "tooltip": "mp4 = h264/yuv420p (small, plays everywhere); gif = 256 colours, loops; webp = animated WebP, loops."}),
                "filename_prefix": ("STRING", {"default": "ZRealism/clip",
                                               "tooltip": "File name start inside ComfyUI's output folder; may contain sub-folders. A counter is appended."}),
            }
        }

    def save(self, frames: Any, fps: float, format: str = "mp4", filename_prefix: str = "ZRealism/clip") -> Dict[str, Any]:
        from ..zrealism_core.imaging.video import write_video

        if format not in VIDEO_FORMATS:
            raise InputError(f"format must be one of {', '.join(VIDEO_FORMATS)}; got {format!r}.")
        arrays = bridge.image_to_numpy(frames)
        path, subfolder, name = next_path(bridge.output_directory(), filename_prefix, format)
        write_video(arrays, path, float(fps))
        # core SaveVideo/SaveAnimatedWEBP answer like this: the frontend previews it as an animation/video
        return {"ui": {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": (True,)},
                "result": (path,)}


NODE_CLASS_MAPPINGS = {"ZRealism_SaveVideo": ZRealism_SaveVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_SaveVideo": "Z-Realism Save Video (MP4/GIF/WebP)"}
