"""ZRealism_SaveVideo: IMAGE frames -> MP4 (h264, yuv420p) / GIF / WebP in ComfyUI's output folder, with a
preview in the UI (core: zrealism_core.imaging.video.write_video)."""
from __future__ import annotations

from typing import Any, Dict

from . import bridge
from ..zrealism_core.errors import InputError
from ..zrealism_core.imaging.video import VIDEO_FORMATS


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
                                               "tooltip": "File name start inside ComfyUI's output folder; may contain sub-folders and ComfyUI's %year%, %month%, %day%, %width%, %height% ... tokens. A counter is appended."}),
            }
        }

    def save(self, frames: Any, fps: float, format: str = "mp4", filename_prefix: str = "ZRealism/clip") -> Dict[str, Any]:
        from ..zrealism_core.imaging.video import write_video

        if format not in VIDEO_FORMATS:
            raise InputError(f"format must be one of {', '.join(VIDEO_FORMATS)}; got {format!r}.")
        arrays = bridge.image_to_numpy(frames)
        h, w = arrays[0].shape[:2] if len(arrays) else (0, 0)
        path, subfolder, name = bridge.save_path(filename_prefix, format, width=w, height=h)
        write_video(arrays, path, float(fps))
        # core SaveVideo/SaveAnimatedWEBP answer like this: the frontend previews it as an animation/video
        return {"ui": {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": (True,)},
                "result": (path,)}


NODE_CLASS_MAPPINGS = {"ZRealism_SaveVideo": ZRealism_SaveVideo}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_SaveVideo": "Z-Realism Save Video (MP4/GIF/WebP)"}
