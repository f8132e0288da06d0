"""The settings a job runs with: the defaults, the analyzer's params override, the speed presets, and
the one resolver, resolve(target, widgets, params, preset), that the sampler node, the AnimateDiff Fuse
node and the `zrealism run` command (still and clip) all call, so a graph and the command give the same result.

How analyzer recommendations (RecommendedParams, the ZREALISM_PARAMS node type) override settings:
one rule, one table (PARAMS_OVERRIDE). Each row says which
settings a RecommendedParams field replaces in the still (sampler node, `zrealism run`'s still)
and in the clip (AnimateDiff Fuse, `zrealism run --video`). To let params replace another setting,
add it to a row (or add a row); nothing else needs to change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

# The sampler's own defaults (the node's widget defaults and `zrealism run`'s starting point).
SAMPLER_DEFAULTS: Dict[str, Any] = {
    "steps": 25, "cfg": 7.0, "denoise": 0.55, "depth_scale": 0.7, "pose_scale": 0.7,
    "depth_start": 0.0, "depth_end": 1.0, "pose_start": 0.0, "pose_end": 1.0, "color_lock": 0.0,
    "detail_scale": 0.0,  # the optional detail ControlNet: off
}

# AnimateDiff Fuse's defaults for the settings params may replace in the clip (its widget defaults,
# and `zrealism run --video`'s starting point).
CLIP_DEFAULTS: Dict[str, Any] = {"depth_scale": 0.7, "pose_scale": 0.7, "control_end": 1.0, "detail_scale": 0.0}

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


def window_notes(values: Dict[str, Any], params: Any, own_ends: Sequence[str] = ()) -> List[str]:
    """Which setting turned a ControlNet off: the params replace `*_end` (control_end) but not `*_start`,
    so a start at or above the params' end leaves that net an empty window. One line per net; none for a
    net in `own_ends`, whose end the user set (its own off-line, control.empty.window, says it)."""
    if params is None:
        return []
    out = []
    for net in ("depth", "pose"):
        start, end, scale = values.get(f"{net}_start", 0.0), values.get(f"{net}_end", 1.0), values.get(f"{net}_scale", 0.0)
        if scale > 0 and start >= end and net not in own_ends:
            out.append(f"{net} ControlNet off: the {net}_start widget ({start:g}) is at or after {net}_end {end:g}, "
                       f"which comes from the connected params (its control_end); lower {net}_start or disconnect params")
    return out


# ------------------------------------------------------------------ speed presets
#
# A preset overrides only these settings (no step count: fewer steps is the few-step path's
# job, e.g. the lcm scheduler with an LCM LoRA). "quality" overrides nothing: it is the output of every release
# before "balanced" became the default, bit for bit (a workflow saved with a preset value keeps it; one saved before
# the preset input existed gets the default, see docs/nodes.md).
# "balanced" is quality with the still's UNet and ControlNet step reuse and a channels-last VAE decode, which keep the
# picture (44.4 dB against quality, edge_f and colour ΔE unchanged to 0.01). Applied after params. The step reuse and
# the decode layout are the still's only (STILL_ONLY), so on the clip
# balanced is quality. Why these: benchmarks/RESULTS.md, bench_still, bench_vs_comfyui.
PRESETS: Dict[str, Dict[str, Any]] = {
    "quality": {},
    "fast": {"cfg_end": 0.5, "control_budget": "prompt_branch", "control_end_max": 0.6, "unet_reuse": 2,
             "control_reuse": 2, "decode_channels_last": True},
    "balanced": {"unet_reuse": 2, "control_reuse": 2, "decode_channels_last": True},
}
PRESET_NAMES = tuple(PRESETS)
# preset settings only the still has (runtime/step_reuse.py: the clip's motion UNet does not take them)
STILL_ONLY = ("control_reuse", "unet_reuse", "decode_channels_last")  # the last: runtime/decode_layout.py
# step-reuse intervals: a preset's applies where the job's own is 1 (off); an interval the user set above 1 stands
_REUSE = ("control_reuse", "unet_reuse")
DEFAULT_PRESET = "balanced"  # new nodes, `zrealism run`, and API prompts that leave preset out
# the settings each target's control end lives in
_CONTROL_ENDS = {"still": ("depth_end", "pose_end"), "clip": ("control_end",)}

PRESET_TRADE_OFFS: Dict[str, str] = {
    "quality": "every step guided, ControlNets on both branches for their whole window, the full UNet at every step "
               "(the output of releases before balanced became the default, bit for bit)",
    "balanced": ("quality's settings, and on the still the full UNet runs every other step (unet_reuse 2: its outer "
                 "blocks only in between), the ControlNets' residuals serve two steps (control_reuse 2) and the VAE decode "
                 "runs channels-last (~1e-5 from plain at most): 0.67x the FLOPs of quality's job, for a picture 44.4 dB from "
                 "quality's (256², 8 steps x 0.5, random weights), edge_f and colour ΔE unchanged to 0.01; on a real ComfyUI "
                 "server (CPU, 256²) it took 0.61 of the time of ComfyUI's native dual-ControlNet graph, quality 0.93; on the "
                 "clip it is quality"),
    "fast": ("classifier-free guidance stops after half the steps, the ControlNets run once per step (prompt branch, "
             "residuals shared) and stop by 0.6 of the schedule, and on the still the full UNet runs every other step "
             "(unet_reuse 2: its outer blocks only in between) and the ControlNets' residuals serve two steps: 0.34x the UNet + "
             "ControlNet FLOPs of quality (0.48x of the whole job), for a little less prompt adherence in the late steps "
             "and looser fine pose/edge alignment (256², 4 steps, random weights: 27.1 dB PSNR against quality, of which "
             "the step reuse costs 0.3 dB; edge_f "
             "and colour ΔE within 0.01 / 0.1); on a real ComfyUI server (CPU, 256²) fast took 0.41 of the time of "
             "ComfyUI's native dual-ControlNet graph, quality 0.93"),
}


def apply_preset(values: Dict[str, Any], preset: str, target: str = "still") -> Dict[str, Any]:
    """`values` with a speed preset's settings: cfg_end, control_budget, and the control end(s) capped."""
    if preset not in PRESETS:
        from .errors import InputError

        raise InputError(f"preset must be one of {', '.join(PRESET_NAMES)}; got {preset!r}.")
    replaced_settings(target)  # validates target
    p = PRESETS[preset]
    out = dict(values)
    for name in ("cfg_end", "control_budget") + (STILL_ONLY if target == "still" else ()):
        if name in p and not (name in _REUSE and int(out.get(name, 1)) > 1):
            out[name] = p[name]
    if "control_end_max" in p:
        # every ControlNet's end: the detail net's too, where the caller passes it
        for name in _CONTROL_ENDS[target] + (("detail_end",) if "detail_end" in out else ()):
            out[name] = min(float(out.get(name, 1.0)), float(p["control_end_max"]))
    return out


def preset_report(control_end: float) -> str:
    """The analyzer report's line on what each preset trades off (with these recommendations)."""
    end = min(float(control_end), float(PRESETS["fast"]["control_end_max"]))
    return (f"Preset 'balanced' (the default): {PRESET_TRADE_OFFS['balanced']}. "
            f"Preset 'quality': {PRESET_TRADE_OFFS['quality']}. "
            f"Preset 'fast' (sampler / AnimateDiff Fuse `preset`, `zrealism run --preset fast`): control end "
            f"{float(control_end):.2f} -> {end:.2f}, steps unchanged; {PRESET_TRADE_OFFS['fast']}.")


# ------------------------------------------------------------------ the one resolver

@dataclass
class Resolved:
    """What resolve() decided: the settings to run with, and why any of them turned a net off."""
    values: Dict[str, Any]
    notes: List[str] = field(default_factory=list)
    preset_notes: List[str] = field(default_factory=list)  # what the preset changed (the report's "preset:" line)


def resolve(target: str, widgets: Dict[str, Any], params: Any = None, preset: str = DEFAULT_PRESET, *,
            pipe: Any = None, explicit: Optional[Dict[str, Any]] = None) -> Resolved:
    """The settings of one job, in the one order every caller uses:

    1. `widgets`: the node's widget values (`zrealism run`: the node's defaults);
    2. `params`: a connected ZREALISM_PARAMS replaces the settings of PARAMS_OVERRIDE (apply_params); its
       detail_scale only where `pipe` has a detail net (control.detail.scale_from_params);
    3. `explicit`: what a `zrealism run` user set on the command line (a node has none: its widgets come first);
    4. `preset`: cfg_end, control_budget, the still's step reuse and the control ends capped (apply_preset).

    target: "still" or "clip". Notes say when the combination turned a net off through a setting the
    params replaced (window_notes), which the net's own off-line (control.empty.window) cannot know.
    """
    from .control.detail import scale_from_params

    values = apply_params(dict(widgets), params, target)
    if "detail_scale" in widgets:
        values["detail_scale"] = scale_from_params(pipe, widgets["detail_scale"], values)
    values.update(explicit or {})
    chosen = values
    values = apply_preset(values, preset, target)
    own_ends = [net for net in ("depth", "pose") if f"{net}_end" in (explicit or {})]
    notes = window_notes(values, params, own_ends) if target == "still" else []
    return Resolved(values, notes, preset_changes(chosen, values, preset))


def preset_changes(chosen: Dict[str, Any], values: Dict[str, Any], preset: str) -> List[str]:
    """One line naming what `preset` changed from the chosen settings (none if it changed nothing), so a
    picture that differs from quality's says why in the node's report."""
    changed = [f"{k} {chosen[k]} -> {v}" if k in chosen else f"{k} {v}" for k, v in values.items() if chosen.get(k) != v]
    if not changed:
        return []
    return [f"{preset} set {', '.join(changed)}; preset quality runs every step in full"]
