"""The detail ControlNet's optional inputs, shared by the sampler and AnimateDiff Fuse (core: zrealism_core.control.detail)."""
from __future__ import annotations

from typing import Any, Dict

from ..zrealism_core.control.hints import DETAIL_HINTS


def optional_inputs() -> Dict[str, tuple]:
    """The inputs to append at the END of a node's `optional` section (saved workflows keep working)."""
    return {
        "detail_scale": ("FLOAT", {
            "default": 0.0, "min": 0.0, "max": 2.0, "step": 0.05,
            "tooltip": "Strength of the optional detail ControlNet (chosen in the Model Loader's detail_controlnet): "
                       "0 = off (it is not run and not moved to the GPU). 0.4-0.7 keeps the drawing's lines (line art, "
                       "canny) or layout and colours (tile). Replaced by the connected params input when a detail net is loaded."}),
        "detail_start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                   "tooltip": "Fraction of the schedule at which the detail ControlNet starts acting."}),
        "detail_end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                 "tooltip": "Fraction of the schedule at which the detail ControlNet stops (end <= start turns it off, with a note). "
                                            "0.6-0.8 lets the last steps add photo texture."}),
        "detail_hint": (list(DETAIL_HINTS), {
            "default": "auto",
            "tooltip": "What the detail ControlNet is given, computed without any model: tile = the prepared image; canny = its "
                       "edges; lineart = its dark strokes as thin white lines (for lineart / lineart_anime / softedge nets). "
                       "auto = from the net's file name (tile, canny, lineart/softedge), tile if the name says nothing."}),
        "detail_map": ("IMAGE", {"tooltip": "Your own hint for the detail ControlNet (e.g. from a preprocessor pack); replaces "
                                            "detail_hint. Resized to the image with a note if its size differs. One for all "
                                            "images or one per image."}),
    }


def kwargs(scale: float, start: float, end: float, hint: str, detail_map: Any) -> Dict[str, Any]:
    """transform()/animate() keyword arguments for one image of a batch (detail_map: its map or None)."""
    return dict(detail_scale=float(scale), detail_start=float(start), detail_end=float(end), detail_hint=hint,
                detail_map=detail_map)
