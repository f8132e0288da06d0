"""`zrealism run` says what the nodes can do (issue 23.4): the settings of the nodes it chains are its
flags under the same names (a few aliases, and a few node-only inputs, each with its reason), and the flags
reach the still: the detail net, the detection (pose crop) options and the sampler's windows."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from zrealism_core.cli import main
from zrealism_core.commands import run as run_command
from zrealism_core.commands.selftest import write_tiny_models_dir
from zrealism_core.imaging.images import load_image

# node input -> the flag's name where it differs (argparse dest)
ALIASES = {
    ("ZRealism_ModelLoader", "precision"): "dtype",
    ("ZRealism_WhiteBackgroundPrep", "long_side"): "size",
    ("ZRealism_MotionModelLoader", "motion_model"): "motion_adapter",
    ("ZRealism_AnimateDiffFuse", "strength"): "video_strength",
}
# node inputs `zrealism run` has no flag for, and why
NODE_ONLY = {
    **{("ZRealism_WhiteBackgroundPrep", k): "run's prep detects the background with the node's defaults"
       for k in ("tolerance", "grabcut", "feather", "grow", "mask_is_background")},
    **{("ZRealism_MotionModelLoader", k): "motion LoRA and SparseCtrl are graph-only" for k in
       ("motion_lora", "motion_lora_strength", "sparsectrl")},
    **{("ZRealism_AnimateDiffFuse", k): "the clip takes the analyzer's recommendation or Fuse's default; the flag "
       "of this name (if any) sets the still" for k in
       ("color_lock", "depth_scale", "pose_scale", "control_end", "detail_scale", "detail_start", "detail_end",
        "detail_hint", "cfg_end", "control_budget")},
}
# the Fuse inputs the clip shares with the still under the same flag (prompt, seed, steps, cfg, preset)
SHARED_WITH_STILL = {"prompt", "negative", "seed", "steps", "cfg", "preset"}
NODES = ("ZRealism_ModelLoader", "ZRealism_DualControlNetSampler", "ZRealism_ControlMaps", "ZRealism_HeuristicAnalyzer",
         "ZRealism_WhiteBackgroundPrep", "ZRealism_MotionModelLoader", "ZRealism_AnimateDiffFuse")
# flags with no node input behind them: the command's own
CLI_ONLY = {"help", "input", "sample", "out", "models", "annotators", "config", "embeddings", "lora", "ip_adapter",
            "clip_vision", "ip_weight", "video", "json", "no_progress", "func"}
SETTING_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def run_actions() -> dict:
    """dest -> argparse action of every `zrealism run` flag."""
    sub = argparse.ArgumentParser().add_subparsers()
    run_command.register(sub)
    return {a.dest: a for a in sub.choices["run"]._actions}


def node_settings(pack) -> dict:
    """(node, input) -> spec of every widget (a setting, not a link) of the nodes `zrealism run` chains."""
    out = {}
    for node in NODES:
        spec = pack.nodes.NODE_CLASS_MAPPINGS[node].INPUT_TYPES()
        for section in ("required", "optional"):
            for name, item in spec.get(section, {}).items():
                if isinstance(item[0], (list, tuple)) or item[0] in SETTING_TYPES:
                    out[(node, name)] = item
    return out


def test_node_inputs_and_run_flags_cover_the_same_settings(pack):
    actions, settings = run_actions(), node_settings(pack)
    flags = set(actions)
    missing = [k for k in settings if ALIASES.get(k, k[1]) not in flags and k not in NODE_ONLY]
    assert missing == [], f"node settings without a `zrealism run` flag of the same name: {missing}"
    stale = [k for k in list(ALIASES) + list(NODE_ONLY) if k not in settings]
    assert stale == [], f"listed here but no longer node inputs: {stale}"
    fuse = [k for (n, k) in settings if n == "ZRealism_AnimateDiffFuse" and (n, k) not in NODE_ONLY and (n, k) not in ALIASES]
    assert set(fuse) - SHARED_WITH_STILL <= {"frames", "fps", "loop"}, fuse
    names = {ALIASES.get(k, k[1]) for k in settings}
    strays = sorted(flags - names - CLI_ONLY)
    assert strays == [], f"`zrealism run` flags that are no node's input name (rename them, or list them): {strays}"
    # the sampler's own settings are all there by name: the detail net's and the detection (pose crop) options too
    sampler = {k for (n, k) in settings if n == "ZRealism_DualControlNetSampler"}
    assert {"detail_scale", "detail_start", "detail_end", "detail_hint", "depth_method", "detect_resolution"} <= sampler <= flags
    # choices and defaults agree where the CLI offers choices
    for (node, name), item in settings.items():
        action = actions.get(ALIASES.get((node, name), name))
        if action is not None and isinstance(item[0], (list, tuple)) and action.choices is not None:
            assert set(action.choices) == set(item[0]), (node, name, action.choices, item[0])


def test_the_checks_catch_a_renamed_flag(pack, monkeypatch):
    """A flag under another name than the node input shows up as a stray and the input as missing."""
    original = run_command.add_sampler_arguments

    def renamed(p):
        original(p)
        p.add_argument("--detail-strength", type=float)

    monkeypatch.setattr(run_command, "add_sampler_arguments", renamed)
    with pytest.raises(AssertionError, match="detail_strength"):
        test_node_inputs_and_run_flags_cover_the_same_settings(pack)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    from zrealism_core.testing.tiny_models import write_tiny_controlnet

    models = write_tiny_models_dir(tmp_path_factory.mktemp("tiny") / "models")
    write_tiny_controlnet(models.parent / "detail" / "tiny_control_lineart.safetensors", "ldm", 3)
    return models


FAST = ["--sample", "--size", "64", "--steps", "4", "--device", "cpu", "--dtype", "fp32", "--no-progress"]


def test_run_flags_reach_the_still(models_dir, tmp_path, caplog):
    detail = models_dir.parent / "detail" / "tiny_control_lineart.safetensors"
    plain = tmp_path / "plain"
    assert main(["run", "--models", str(models_dir), "--out", str(plain)] + FAST) == 0
    out = tmp_path / "flags"
    given = ["--cfg", "3.5", "--depth-start", "0.1", "--pose-end", "0.8", "--scheduler", "euler",
             "--depth-method", "depth_anything", "--detect-resolution", "128", "--detail-controlnet", str(detail),
             "--detail-scale", "0.8", "--detail-end", "0.9", "--detail-hint", "canny", "--cfg-end", "0.5",
             "--control-budget", "prompt_branch", "--no-cpu-fallback"]
    with caplog.at_level("INFO", logger="zrealism"):
        assert main(["run", "--models", str(models_dir), "--out", str(out)] + FAST + given) == 0
    assert "detail hint (canny)" in caplog.text  # the detail net was given its canny hint
    doc = json.loads((out / "report.json").read_text())
    s = doc["settings"]
    assert (s["cfg"], s["depth_start"], s["pose_end"], s["scheduler"]) == (3.5, 0.1, 0.8, "euler")
    assert (s["depth_method"], s["detect_resolution"]) == ("depth_anything", 128)
    assert (s["detail_scale"], s["detail_end"], s["detail_hint"]) == (0.8, 0.9, "canny")
    assert (s["cfg_end"], s["control_budget"]) == (0.5, "prompt_branch")
    assert doc["options"]["sampler"]["detail_scale"] == 0.8
    # the detail net ran (no note switching it off) and changed the still
    assert not any("detail" in n for n in doc["notes"]["still"]), doc["notes"]["still"]
    assert np.abs(load_image(out / "result.png") - load_image(plain / "result.png")).max() > 1e-3
    # unset, the flags leave the analyzer's recommendation and the node defaults
    base = json.loads((plain / "report.json").read_text())["settings"]
    assert (base["detail_scale"], base["cfg_end"], base["control_budget"]) == (0.0, 1.0, "full")
    assert "depth_method" not in base and "scheduler" not in base


def test_fast_preset_still_caps_the_detail_end(models_dir, tmp_path):
    """As in the node, the preset applies after the widgets/flags: fast caps every control end at 0.6."""
    detail = models_dir.parent / "detail" / "tiny_control_lineart.safetensors"
    out = tmp_path / "fast"
    assert main(["run", "--models", str(models_dir), "--out", str(out), "--preset", "fast", "--detail-controlnet",
                 str(detail), "--detail-scale", "0.5", "--detail-end", "0.9"] + FAST) == 0
    s = json.loads((out / "report.json").read_text())["settings"]
    assert s["detail_end"] == 0.6 and s["cfg_end"] == 0.5
