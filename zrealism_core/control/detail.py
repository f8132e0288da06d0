"""The optional third ("detail") ControlNet of a job: which hint it gets, at which scale and window.

    control = detail_control(pipe, rgb8, scale=0.6, start=0.0, end=0.8, hint="auto", given=None, notes=notes)
    control.active          # False: the net does not run and is not moved to the device
    control.image           # H,W,3 float32 0..1 hint (None when off)
    control.extend(images, scales, starts, ends)   # append to a job's per-net lists (pipe with a detail net)

Rules (each change is reported through runtime.note):
- no detail net loaded: the inputs are ignored (noted when detail_scale > 0);
- detail_scale 0 or an empty start/end window: off, no hint computed;
- detail_map given: used as the hint, resized to the job's size (noted when its size differs);
- otherwise the weight-free hint `detail_hint` (tile / canny / lineart; "auto" from the net's file
  name, hints.hint_for_file); a hint that cannot be computed (no edges) switches the net off.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .hints import EmptyHintError, detail_hint, resolve_kind
from .empty import switch_off_empty, window
from ..imaging.images import resize_rgb, to_rgb
from ..runtime.fallback import note, stage

log = logging.getLogger("zrealism")

MODULE_NAME = "controlnet_detail"  # its name in ZRealismPipeline.modules() (placement skips it when off)


@dataclass
class DetailControl:
    present: bool                  # the pipeline has a detail net
    image: Optional[np.ndarray]    # the hint (H,W,3 float32 0..1) or None when off
    scale: float = 0.0
    start: float = 0.0
    end: float = 1.0
    kind: str = ""                 # tile / canny / lineart / map (the user's detail_map)

    @property
    def active(self) -> bool:
        return self.present and self.image is not None and self.scale > 0.0

    def extend(self, images: List[Any], scales: List[float], starts: List[float], ends: List[float], off: Any) -> None:
        """Append this net's entry to a job's per-net lists (only when the pipeline has the net: a pipe
        without one keeps its two-net lists, bit-identical to before). `off`: the image for an idle net."""
        if not self.present:
            return
        images.append(self.image if self.active else off)
        scales.append(self.scale if self.active else 0.0)
        starts.append(self.start if self.active else 0.0)
        ends.append(self.end if self.active else 1.0)


def scale_from_params(pipe: Any, own: float, values: dict) -> float:
    """The detail scale a job uses after the params rule (settings.apply_params put the analyzer's value in
    `values`): the recommendation only where a detail net is loaded, else `own` (so a recommendation never
    gives an "ignored" note on a pipeline without a detail net)."""
    if getattr(pipe, "detail_controlnet", None) is None:
        return float(own)
    return float(values.get("detail_scale", own))


def detail_control(pipe: Any, rgb: np.ndarray, *, scale: float = 0.0, start: float = 0.0, end: float = 1.0,
                   hint: str = "auto", given: Any = None, notes: Optional[List[str]] = None,
                   timings: Optional[Dict[str, float]] = None) -> DetailControl:
    """The detail net's part of a job on the prepared image `rgb` (H,W,3 at the job's size). See the module doc.
    timings gets a "detail hint" entry when a hint is computed."""
    name = (getattr(pipe, "sources", None) or {}).get("detail_controlnet")
    present = getattr(pipe, "detail_controlnet", None) is not None
    asked = scale
    # validated by the one rule; an empty window turns the net off, said only where the net is loaded
    scale, start, end = window("detail", scale, start, end, notes if present else None)
    kind = resolve_kind(hint, name)  # validates `hint` even when the net is off
    if not present:
        if asked > 0:
            note(notes, f"detail_scale {asked:g} ignored: no detail ControlNet is loaded (choose one in the Model Loader's "
                        "detail_controlnet, or load_pipeline(detail_controlnet=...))")
        return DetailControl(False, None)
    if scale == 0.0:
        return DetailControl(True, None)
    h, w = rgb.shape[:2]
    if given is not None:
        image = to_rgb(given, name="detail map")
        if image.shape[:2] != (h, w):
            note(notes, f"detail map {image.shape[1]}x{image.shape[0]} resized to the image's {w}x{h}")
            image = resize_rgb(image, h, w)
        if switch_off_empty("detail", image, scale, detected=False, notes=notes) == 0.0:  # a flat map says nothing
            return DetailControl(True, None)
        return DetailControl(True, np.ascontiguousarray(image, dtype=np.float32), scale, start, end, "map")
    try:
        with stage("detail hint", timings, kind):
            image = detail_hint(rgb, kind)
    except EmptyHintError as exc:
        note(notes, f"detail ControlNet off: {exc}")
        return DetailControl(True, None)
    log.info("zrealism: detail hint %s%s", kind, f" (auto, from {Path(str(name)).name})" if hint == "auto" and name else "")
    return DetailControl(True, image, scale, start, end, kind)
