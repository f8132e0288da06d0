"""The optional detail ControlNet (load_pipeline(detail_controlnet=...), transform(detail_*=...), animate)."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, one_torch_thread, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import InputError, ModelFileError
from zrealism_core.engine import load_pipeline, transform
from zrealism_core.imaging.sample import sample_character



def _img():
    rgba = sample_character(64)
    a = rgba[..., 3:]
    return (rgba[..., :3] * a + (1 - a)).astype(np.float32)


DEPTH = rand_image(64, 64, 1)
POSE = rand_image(64, 64, 2)


@functools.lru_cache(maxsize=None)
def _detail_pipe():
    from fakes.engine_fixtures import _tiny_set

    s = _tiny_set()
    with one_torch_thread():
        return load_pipeline(s.checkpoint, s.depth_controlnet, s.pose_controlnet, device="cpu", config=s.config,
                             cache=False, detail_controlnet=s.detail_controlnet)


@pytest.fixture(scope="module")
def detail_pipe():
    return _detail_pipe()


def run(pipe, **kw):
    args = dict(depth_map=DEPTH, pose_map=POSE, steps=4, denoise=1.0, seed=0)
    args.update(kw)
    return transform(pipe, _img(), **args)


def count_calls(module):
    calls = []
    return calls, module.register_forward_hook(lambda m, i, o: calls.append(1))


def test_loaded_as_a_third_net_in_the_same_multi_and_registered(detail_pipe, tiny_pipe):
    from zrealism_core.runtime.guidance import skipping_multi_controlnet

    assert len(detail_pipe.controlnets) == 3 and detail_pipe.detail_controlnet is detail_pipe.controlnets[2]
    assert type(detail_pipe.sd.controlnet) is type(skipping_multi_controlnet([]))
    assert detail_pipe.modules()["controlnet_detail"] is detail_pipe.detail_controlnet
    assert tiny_pipe.detail_controlnet is None and "controlnet_detail" not in tiny_pipe.modules()
    assert detail_pipe.sources["detail_controlnet"].endswith("tiny-control-lineart.safetensors")


def test_scale_zero_is_bit_identical_to_no_detail_net_with_zero_calls(detail_pipe, tiny_pipe):
    calls, handle = count_calls(detail_pipe.detail_controlnet)
    try:
        with_net = run(detail_pipe, detail_scale=0.0, detail_hint="lineart")
        assert calls == []
    finally:
        handle.remove()
    without = run(tiny_pipe)
    assert np.array_equal(with_net.image, without.image)
    assert with_net.detail_map is None and with_net.notes == without.notes


def test_scale_one_changes_the_output_and_the_window_is_honoured(detail_pipe):
    off = run(detail_pipe)
    calls, handle = count_calls(detail_pipe.detail_controlnet)
    try:
        on = run(detail_pipe, detail_scale=1.0, detail_hint="lineart")
        assert len(calls) == 4  # every one of the 4 steps
        assert np.abs(on.image - off.image).max() > 1e-3
        assert on.detail_map is not None and on.detail_map.shape == on.image.shape
        calls.clear()
        run(detail_pipe, detail_scale=1.0, detail_start=0.5, detail_end=1.0, detail_hint="tile")
        assert len(calls) == 2  # second half only
        calls.clear()
        run(detail_pipe, detail_scale=1.0, detail_start=0.0, detail_end=0.25, detail_hint="tile")
        assert len(calls) == 1
        calls.clear()
        r = run(detail_pipe, detail_scale=1.0, detail_start=0.5, detail_end=0.5)
        assert calls == [] and any("window" in n for n in r.notes)
    finally:
        handle.remove()


def test_hints_differ_and_auto_follows_the_file_name(detail_pipe):
    a = run(detail_pipe, detail_scale=1.0, detail_hint="auto")
    line = run(detail_pipe, detail_scale=1.0, detail_hint="lineart")
    tile = run(detail_pipe, detail_scale=1.0, detail_hint="tile")
    assert np.array_equal(a.image, line.image)  # tiny-control-lineart -> lineart
    assert np.abs(tile.image - line.image).max() > 1e-4
    assert np.array_equal(tile.detail_map, tile.detail_map.clip(0, 1))


def test_detail_map_of_another_size_is_resized_with_a_note(detail_pipe):
    hint = np.zeros((32, 40, 3), np.float32)
    hint[10:20, 5:30] = 1.0
    r = run(detail_pipe, detail_scale=1.0, detail_map=hint)
    assert r.detail_map.shape == (64, 64, 3)
    assert any("detail map 40x32 resized" in n for n in r.notes)


def test_an_image_with_no_edges_switches_the_net_off_with_a_message(detail_pipe):
    flat = np.full((64, 64, 3), 0.8, np.float32)
    calls, handle = count_calls(detail_pipe.detail_controlnet)
    try:
        r = transform(detail_pipe, flat, depth_map=DEPTH, pose_map=POSE, steps=2, denoise=1.0,
                      detail_scale=1.0, detail_hint="canny")
    finally:
        handle.remove()
    assert calls == [] and r.detail_map is None
    assert any("detail ControlNet off" in n and "no edges" in n for n in r.notes)


def test_scale_without_a_detail_net_is_noted_not_silent(tiny_pipe):
    r = run(tiny_pipe, detail_scale=0.5)
    assert any("no detail ControlNet is loaded" in n for n in r.notes)
    with pytest.raises(InputError):
        run(tiny_pipe, detail_hint="sketch")
    with pytest.raises(InputError):
        run(tiny_pipe, detail_scale=-1.0)


def test_an_off_detail_net_is_not_placed_on_the_device(detail_pipe, monkeypatch):
    placed = []
    real = type(detail_pipe).place

    def spy(attempt, dtype=None, offload=False, *, names=None):
        placed.append(set(names) if names is not None else set(detail_pipe.modules()))
        return real(detail_pipe, attempt, dtype, offload, names=names)

    monkeypatch.setattr(detail_pipe, "place", spy)
    run(detail_pipe, detail_scale=0.0)
    assert placed and "controlnet_detail" not in placed[-1] and "controlnet_depth" in placed[-1]
    run(detail_pipe, detail_scale=1.0, detail_hint="tile")
    assert "controlnet_detail" in placed[-1]
    flat = np.full((64, 64, 3), 0.8, np.float32)  # no edges: the net is switched off, so not placed either
    transform(detail_pipe, flat, depth_map=DEPTH, pose_map=POSE, steps=2, denoise=1.0, detail_scale=1.0, detail_hint="canny")
    assert "controlnet_detail" not in placed[-1]


def test_non_sd15_detail_controlnet_gives_the_same_clear_error(tiny_set, tmp_path):
    from safetensors.torch import save_file

    fake = tmp_path / "control_sdxl_canny.safetensors"
    save_file({"controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
               "add_embedding.linear_1.weight": torch.zeros(4, 4)}, str(fake))
    with pytest.raises(ModelFileError) as info:
        load_pipeline(tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cpu",
                      config=tiny_set.config, cache=False, detail_controlnet=fake)
    msg = str(info.value)
    assert "SDXL ControlNet" in msg and "detail ControlNet" in msg and "models/controlnet" in msg
    with pytest.raises(ModelFileError) as info:
        load_pipeline(tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cpu",
                      config=tiny_set.config, cache=False, detail_controlnet=tmp_path / "missing.safetensors")
    assert "detail ControlNet" in str(info.value) and "not found" in str(info.value)


# ---------------------------------------------------------------- the clip

@pytest.fixture(scope="module")
def adapter():
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    return tiny_motion_adapter(max_seq_length=8)


def clip(pipe, adapter, **kw):
    from zrealism_core.animation import animate

    still = _img()[:24, :32]
    args = dict(motion_adapter=adapter, frames=3, steps=2, strength=1.0, cfg=1.0, seed=0,
                depth_map=DEPTH[:24, :32], pose_map=POSE[:24, :32], color_lock=0.0)
    args.update(kw)
    return animate(pipe, still, **args)


def test_clip_scale_zero_matches_no_detail_net_and_scale_one_changes_it(detail_pipe, tiny_pipe, adapter):
    calls, handle = count_calls(detail_pipe.detail_controlnet)
    try:
        off = clip(detail_pipe, adapter)
        assert calls == []
        without = clip(tiny_pipe, adapter)
        assert all(np.array_equal(a, b) for a, b in zip(off, without))
        on = clip(detail_pipe, adapter, detail_scale=1.0, detail_hint="tile")
        assert len(calls) == 2  # both steps
        calls.clear()
        clip(detail_pipe, adapter, detail_scale=1.0, detail_hint="tile", detail_start=0.5)
        assert len(calls) == 1
    finally:
        handle.remove()
    assert max(np.abs(a - b).max() for a, b in zip(on, off)) > 1e-4


def test_params_set_the_detail_scale_only_where_a_detail_net_is_loaded(detail_pipe, tiny_pipe):
    from zrealism_core.analysis import RecommendedParams
    from zrealism_core.control.detail import scale_from_params
    from zrealism_core.settings import SAMPLER_DEFAULTS, apply_params

    values = apply_params(dict(SAMPLER_DEFAULTS), RecommendedParams(detail_scale=0.55))
    assert values["detail_scale"] == 0.55
    assert scale_from_params(detail_pipe, 0.0, values) == 0.55
    assert scale_from_params(tiny_pipe, 0.0, values) == 0.0  # no net: the user's own value, no "ignored" note
    assert scale_from_params(detail_pipe, 0.3, apply_params(dict(SAMPLER_DEFAULTS), None) | {"detail_scale": 0.3}) == 0.3
