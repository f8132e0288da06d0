"""How analyzer recommendations (RecommendedParams, the ZREALISM_PARAMS node type) override sampler settings.

One rule for the sampler node and the `zrealism run` command, so both give the same result.
"""
from __future__ import annotations

from typing import Any, Dict

# The sampler's own defaults (the node's widget defaults and `zrealism run`'s starting point).
SAMPLER_DEFAULTS: Dict[str, Any] = {
    "steps": 25, "cfg": 7.0, "denoise": 0.55, "depth_scale": 0.7, "pose_scale": 0.7,
    "depth_start": 0.0, "depth_end": 1.0, "pose_start": 0.0, "pose_end": 1.0, "color_lock": 0.0,
}

# RecommendedParams field -> the sampler settings it replaces
PARAMS_OVERRIDE = {
    "depth_scale": ("depth_scale",),
    "pose_scale": ("pose_scale",),
    "denoise": ("denoise",),
    "steps": ("steps",),
    "cfg": ("cfg",),
    "control_end": ("depth_end", "pose_end"),
}


def apply_params(values: Dict[str, Any], params: Any) -> Dict[str, Any]:
    """`values` with those a connected ZREALISM_PARAMS carries replaced (see PARAMS_OVERRIDE).

    `params` is a RecommendedParams, a dict with the same keys, or None (nothing replaced).
    """
    if params is None:
        return values
    out = dict(values)
    for field_name, names in PARAMS_OVERRIDE.items():
        value = getattr(params, field_name, None)
        if value is None and isinstance(params, dict):
            value = params.get(field_name)
        if value is None:
            continue
        for name in names:
            out[name] = int(value) if name == "steps" else float(value)
    return out
