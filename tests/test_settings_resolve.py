"""settings.resolve: the one order (widgets -> params -> explicit -> preset) that both nodes and the
runner use, and the rule that nobody else writes that sequence again."""
from __future__ import annotations

import ast
from pathlib import Path

from zrealism_core.analysis import RecommendedParams
from zrealism_core.settings import CLIP_DEFAULTS, SAMPLER_DEFAULTS, resolve

REPO = Path(__file__).resolve().parents[1]
SEQUENCE = {"apply_params", "apply_preset", "scale_from_params", "window_notes"}
# fill_workflow sets a graph's widget values as the graph's own resolve would (the worker posts the graph)
ALLOWED = {"zrealism_core/settings.py", "zrealism_core/queue/comfy.py"}


def test_order_widgets_params_explicit_preset():
    params = RecommendedParams(depth_scale=0.3, pose_scale=0.4, denoise=0.6, steps=12, cfg=5.0, control_end=0.8)
    widgets = dict(SAMPLER_DEFAULTS, cfg_end=1.0, control_budget="full", detail_end=1.0)
    r = resolve("still", widgets, params, "fast", explicit={"steps": 30})
    v = r.values
    assert (v["depth_scale"], v["pose_scale"], v["denoise"], v["cfg"]) == (0.3, 0.4, 0.6, 5.0)  # params over widgets
    assert v["steps"] == 30  # explicit over params
    assert v["depth_end"] == v["pose_end"] == v["detail_end"] == 0.6  # the fast preset caps the ends last
    assert (v["cfg_end"], v["control_budget"]) == (0.5, "prompt_branch")
    assert r.notes == []
    clip = resolve("clip", dict(CLIP_DEFAULTS, cfg_end=1.0, control_budget="full", detail_end=1.0), params).values
    assert (clip["depth_scale"], clip["pose_scale"], clip["control_end"]) == (0.3, 0.4, 0.8)
    assert "denoise" not in clip and "steps" not in clip


def test_a_start_past_the_params_end_is_explained():
    r = resolve("still", dict(SAMPLER_DEFAULTS, depth_start=0.9), RecommendedParams(control_end=0.5))
    assert len(r.notes) == 1 and r.notes[0].startswith("depth ControlNet off: the depth_start widget (0.9)")
    assert resolve("still", dict(SAMPLER_DEFAULTS, depth_start=0.9)).notes == []  # no params: the net's own line says it


def test_the_settings_sequence_is_written_once():
    calls = []
    for path in sorted(list((REPO / "zrealism_core").rglob("*.py")) + list((REPO / "nodes").rglob("*.py"))):
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in SEQUENCE and rel not in ALLOWED:
                    calls.append(f"{rel}:{node.lineno} {name}")
    assert calls == [], "call settings.resolve instead: " + ", ".join(calls)
