"""A ControlNet whose map says nothing is switched off (scale 0: SkippingMultiControlNet skips its forward).

One decision for every map, detected or given, for the still and the clip:
- pose: no keypoints drawn - nothing brighter than near-black (OpenPose maps are coloured limbs on
  black; a detector that found nobody returns a black map). A pose forward is ~20% of a step.
- any other map (depth, detail...): no contrast - the whole map is one grey level, within noise.
The switch-off is never silent: runtime.note logs it and adds it to the result's notes
("pose ControlNet off: no person found").
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ..runtime.fallback import note

POSE_BLACK = 10.0 / 255.0      # brightest pixel of a pose map with nothing drawn on it (compression noise)
FLAT_CONTRAST = 2.0 / 255.0    # max - min of a map with no contrast (one grey level, give or take rounding)


def empty_reason(kind: str, rgb: Optional[np.ndarray], *, detected: bool) -> Optional[str]:
    """Why the `kind` map ("pose", "depth", ...) has nothing to tell its ControlNet, or None if it has."""
    if rgb is None:
        return None
    a = np.asarray(rgb, dtype=np.float32)
    if a.size == 0:
        return f"the {kind} map is empty"
    if a.max() > 1.0 + 1e-6:  # 0..255 input
        a = a / 255.0
    if kind == "pose":
        if float(a.max()) <= POSE_BLACK:
            return "no person found" if detected else "the pose map has no keypoints (all black)"
        return None
    if float(a.max() - a.min()) <= FLAT_CONTRAST:
        return f"the {'detected ' if detected else ''}{kind} map has no contrast (one flat level)"
    return None


def switch_off_empty(kind: str, rgb: Optional[np.ndarray], scale: float, *, detected: bool,
                     notes: Optional[List[str]] = None) -> float:
    """`scale`, or 0 with a note when the map is empty (see the module doc). A net already off stays quiet."""
    if float(scale) == 0.0:
        return 0.0
    why = empty_reason(kind, rgb, detected=detected)
    if why is None:
        return float(scale)
    note(notes, f"{kind} ControlNet off: {why}")
    return 0.0

