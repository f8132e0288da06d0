"""Whether a ControlNet is off, decided and said in one place for the still, the clip and the detail net.

A net is off (scale 0: SkippingMultiControlNet skips its forward, placement does not move it) when
- its scale is 0;
- its window is empty (window(): start >= end), e.g. a start widget at or after an end the connected
  params set (settings.resolve says that part);
- its map says nothing (switch_off_empty), one decision for every map, detected or given:
- pose: no keypoints drawn - nothing brighter than near-black (OpenPose maps are coloured limbs on
  black; a detector that found nobody returns a black map). A pose forward is ~20% of a step.
- any other map (depth, detail...): no contrast - the whole map is one grey level, within noise.
The switch-off is never silent: runtime.note logs it and adds it to the result's notes
("pose ControlNet off: no person found").
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..runtime.fallback import note

POSE_BLACK = 10.0 / 255.0      # brightest pixel of a pose map with nothing drawn on it (compression noise)
FLAT_CONTRAST = 2.0 / 255.0    # max - min of a map with no contrast (one grey level, give or take rounding)
MAX_SCALE = 5.0                # far past any useful strength (the nodes stop at 2); above it is a typo


def window(kind: str, scale: float, start: float, end: float, notes: Optional[List[str]] = None) -> Tuple[float, float, float]:
    """The `kind` net's validated (scale, start, end). An empty window (start >= end) turns the net off:
    (0, 0, 1), with a note unless its scale was 0 already (diffusers rejects start >= end)."""
    for label, v in (("scale", scale), ("start", start), ("end", end)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise InputError(f"{kind} {label} must be a number; got {v!r}.")
    if not 0.0 <= scale <= MAX_SCALE:
        raise InputError(f"{kind} scale must be between 0 and {MAX_SCALE:g}; got {scale!r}.")
    if not (0.0 <= start <= 1.0 and 0.0 <= end <= 1.0):
        raise InputError(f"{kind} start/end must be between 0 and 1; got {start}..{end}.")
    if start >= end:
        if scale > 0:
            note(notes, f"{kind} ControlNet off: start >= end, an empty window ({kind}_start {start:g}, {kind}_end {end:g}); "
                        f"lower {kind}_start or raise {kind}_end")
        return 0.0, 0.0, 1.0
    return float(scale), float(start), float(end)


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

