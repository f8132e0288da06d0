"""The params rule: which settings a connected ZREALISM_PARAMS replaces, in the still and the clip."""
from __future__ import annotations

import pytest

from zrealism_core.analysis import RecommendedParams
from zrealism_core.settings import CLIP_DEFAULTS, SAMPLER_DEFAULTS, apply_params, replaced_settings

PARAMS = RecommendedParams(depth_scale=0.4, pose_scale=0.9, denoise=0.35, steps=12, cfg=5.5, control_end=0.6,
                           detail_scale=0.45)


def test_still_takes_scales_denoise_steps_cfg_and_ends_but_keeps_starts_and_colour_lock():
    got = apply_params(dict(SAMPLER_DEFAULTS), PARAMS)
    assert got == {**SAMPLER_DEFAULTS, "depth_scale": 0.4, "pose_scale": 0.9, "denoise": 0.35, "steps": 12,
                   "cfg": 5.5, "depth_end": 0.6, "pose_end": 0.6, "detail_scale": 0.45}
    assert isinstance(got["steps"], int) and isinstance(got["cfg"], float)


def test_clip_takes_only_the_control_settings():
    values = dict(CLIP_DEFAULTS, strength=0.5, steps=20, cfg=7.0)
    got = apply_params(values, PARAMS, "clip")
    assert got == dict(values, depth_scale=0.4, pose_scale=0.9, control_end=0.6, detail_scale=0.45)


def test_dict_params_and_none():
    values = dict(SAMPLER_DEFAULTS)
    assert apply_params(values, None) is values
    assert apply_params(values, {"steps": 9.0}) == dict(values, steps=9)
    assert apply_params(values, PARAMS.to_dict()) == apply_params(values, PARAMS)


def test_replaced_settings_lists_each_target():
    assert set(replaced_settings("still")) == {"depth_scale", "pose_scale", "denoise", "steps", "cfg", "depth_end", "pose_end",
                                               "detail_scale"}
    assert set(replaced_settings("clip")) == {"depth_scale", "pose_scale", "control_end", "detail_scale"}
    with pytest.raises(ValueError, match="target"):
        apply_params({}, PARAMS, "video")


def test_nodes_use_the_rule_and_its_defaults(pack):
    """Each setting the rule replaces is a widget of that node; those with a table default use it."""
    for cls, target, defaults in (
        (pack.nodes.dual_controlnet_sampler.ZRealism_DualControlNetSampler, "still", SAMPLER_DEFAULTS),
        (pack.nodes.animatediff_fuse.ZRealism_AnimateDiffFuse, "clip", CLIP_DEFAULTS),
    ):
        types = cls.INPUT_TYPES()
        inputs = {**types["required"], **types.get("optional", {})}  # detail_scale is an optional input
        for name in replaced_settings(target):
            assert inputs[name][1]["default"] == defaults[name], (cls.__name__, name)
