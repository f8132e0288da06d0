"""How analyzer recommendations (RecommendedParams, the ZREALISM_PARAMS node type) override settings.

One rule, one table (PARAMS_OVERRIDE), for the sampler node, the AnimateDiff Fuse node and the
`zrealism run` command, so a graph and the command give the same result. Each row says which
settings a RecommendedParams field replaces in the still (sampler node, `zrealism run`'s still)
and in the clip (AnimateDiff Fuse, `zrealism run --video`). To let params replace another setting,
add it to a row (or add a row); nothing else needs to change.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

# The sampler's own defaults (the node's widget defaults and `zrealism run`'s starting point).
SAMPLER_DEFAULTS: Dict[str, Any] = {
    "steps": 25, "cfg": 7.0, "denoise": 0.55, "depth_scale": 0.7, "pose_scale": 0.7,
    "depth_start": 0.0, "depth_end": 1.0, "pose_start": 0.0, "pose_end": 1.0, "color_lock": 0.0,
}

# AnimateDiff Fuse's defaults for the settings params may replace in the clip (its widget defaults,
# and `zrealism run --video`'s starting point).
CLIP_DEFAULTS: Dict[str, Any] = {"depth_scale": 0.7, "pose_scale": 0.7, "control_end": 1.0}

TARGETS = ("still", "clip")

# RecommendedParams field -> {target: the settings it replaces there}. The still's denoise, steps
# and cfg do not apply to the clip (its strength, steps and cfg are its own).
PARAMS_OVERRIDE: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "depth_scale": {"still": ("depth_scale",), "clip": ("depth_scale",)},
    "pose_scale": {"still": ("pose_scale",), "clip": ("pose_scale",)},
    "denoise": {"still": ("denoise",)},
    "steps": {"still": ("steps",)},
    "cfg": {"still": ("cfg",)},
    "control_end": {"still": ("depth_end", "pose_end"), "clip": ("control_end",)},
    # only where a detail ControlNet is loaded: the nodes and `zrealism run` keep their own detail_scale otherwise
    "detail_scale": {"still": ("detail_scale",), "clip": ("detail_scale",)},
}

# Settings that are whole numbers (everything else a params field replaces is a float).
_INTEGER = {"steps"}


def replaced_settings(target: str = "still") -> Tuple[str, ...]:
    """The settings of `target` that a connected ZREALISM_PARAMS replaces, in table order."""
    if target not in TARGETS:
        raise ValueError(f"params target must be one of {TARGETS}; got {target!r}")
    return tuple(name for row in PARAMS_OVERRIDE.values() for name in row.get(target, ()))


def apply_params(values: Dict[str, Any], params: Any, target: str = "still") -> Dict[str, Any]:
    """`values` with those a connected ZREALISM_PARAMS carries replaced (see PARAMS_OVERRIDE).

    `params` is a RecommendedParams, a dict with the same keys, or None (nothing replaced).
    target: "still" (the sampler) or "clip" (AnimateDiff Fuse).
    """
    replaced_settings(target)  # validates target
    if params is None:
        return values
    out = dict(values)
    for field_name, row in PARAMS_OVERRIDE.items():
        value = getattr(params, field_name, None)
        if value is None and isinstance(params, dict):
            value = params.get(field_name)
        if value is None:
            continue
        for name in row.get(target, ()):
            out[name] = int(value) if name in _INTEGER else float(value)
    return out


def window_notes(values: Dict[str, Any], params: Any, starts: Dict[str, float]) -> List[str]:
    """Which widget turned a ControlNet off: the params replace `*_end` (control_end) but not `*_start`,
    so a start widget at or above the params' end leaves that net an empty window. One line per net."""
    if params is None:
        return []
    out = []
    for net in ("depth", "pose"):
        start, end, scale = starts.get(f"{net}_start", 0.0), values.get(f"{net}_end", 1.0), values.get(f"{net}_scale", 0.0)
        if scale > 0 and start >= end:
            out.append(f"{net} ControlNet off: the {net}_start widget ({start:g}) is at or after {net}_end {end:g}, "
                       f"which comes from the connected params (its control_end); lower {net}_start or disconnect params")
    return out
