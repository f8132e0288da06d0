"""IP-Adapter views on tiny models: weight 0 == none (bit-identical), weight 1 changes the still and the
clip, the plain pipe is untouched after a job, the three layouts load, bad files are refused."""
from __future__ import annotations

import numpy as np
import pytest

from fakes.engine_fixtures import _one_thread, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import InputError, ModelFileError
from zrealism_core.engine import transform
from zrealism_core.testing import tiny_ip_adapter as tip

IMG = rand_image(32, 32, 0)
REF = rand_image(40, 48, 5)


def run(pipe, **kw):
    args = dict(depth_map=IMG, pose_map=IMG, prompt="a photo", steps=2, denoise=1.0, seed=3, cfg=5.0)
    args.update(kw)
    return transform(pipe, IMG, **args).image


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ipadapter")
    return dict(
        plain=tip.write_tiny_ip_adapter(d / "ip-adapter_tiny.safetensors", "plain"),
        plain_bin=tip.write_tiny_ip_adapter(d / "ip-adapter_tiny.bin", "plain", seed=5),
        plus=tip.write_tiny_ip_adapter(d / "ip-adapter-plus_tiny.safetensors", "plus"),
        plus_face=tip.write_tiny_ip_adapter(d / "ip-adapter-plus-face_tiny.safetensors", "plus_face", seed=6),
        sdxl=tip.write_sdxl_ip_adapter(d / "ip-adapter_sdxl.safetensors"),
        cv=tip.write_tiny_clip_vision(d / "tiny-clip-vision.safetensors"),
        cv_other=tip.write_tiny_clip_vision(d / "other-encoder.safetensors", hidden_size=128, projection_dim=48),
    )


def test_weight_zero_is_none_and_one_changes(tiny_pipe, files):
    plain = run(tiny_pipe)
    zero = tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, weight=0.0)
    one = tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, weight=1.0)
    assert np.array_equal(run(zero), plain)
    assert np.abs(run(one) - plain).max() > 1e-3
    assert np.array_equal(run(tiny_pipe), plain)


def test_unet_is_restored_after_a_job(tiny_pipe, files):
    unet = tiny_pipe.sd.unet
    before = dict(unet.attn_processors)
    keys = set(unet.state_dict())
    run(tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, weight=1.0))
    after = unet.attn_processors
    assert all(after[k] is v for k, v in before.items())
    assert unet.encoder_hid_proj is None and unet.config.encoder_hid_dim_type is None
    assert set(unet.state_dict()) == keys


@pytest.mark.parametrize("layout", ["plus", "plus_face", "plain_bin"])
def test_layouts_change_the_still(tiny_pipe, files, layout):
    plain = run(tiny_pipe)
    view = tiny_pipe.with_ip_adapter(files[layout], files["cv"], REF, weight=1.0)
    assert view.ip_adapter.kind == ("plain" if layout == "plain_bin" else "plus")
    assert np.abs(run(view) - plain).max() > 1e-3


def test_reference_image_and_window_matter(tiny_pipe, files):
    full = run(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0))
    other_ref = run(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], rand_image(40, 48, 9), weight=1.0))
    late = run(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0, start=0.5, end=1.0), steps=4)
    full4 = run(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0), steps=4)
    assert not np.array_equal(full, other_ref)
    assert not np.array_equal(late, full4) and not np.array_equal(late, run(tiny_pipe, steps=4))


def test_no_cfg_and_cfg_end_cooperate(tiny_pipe, files):
    view = tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, weight=1.0)
    assert np.abs(run(view, cfg=1.0) - run(tiny_pipe, cfg=1.0)).max() > 1e-3  # cond-only embeds
    cut = run(view, steps=4, cfg_end=0.5)  # the uncond half of the image embeds is dropped mid-run
    assert np.isfinite(cut).all() and not np.array_equal(cut, run(view, steps=4))


def test_lora_and_ip_adapter_together(tiny_pipe, files, tmp_path):
    from zrealism_core.testing.tiny_loras import write_kohya_lora

    lora = write_kohya_lora(tmp_path / "l.safetensors")
    both = tiny_pipe.with_lora(lora, 1.0).with_ip_adapter(files["plain"], files["cv"], REF, weight=1.0)
    assert len(both.loras) == 1 and both.ip_adapter is not None
    only_lora = run(tiny_pipe.with_lora(lora, 1.0))
    assert not np.array_equal(run(both), only_lora)
    assert set(both.adapter_modules()) == {"ip_adapter_image_encoder", "ip_adapter_projection", "ip_adapter_attention"}
    assert set(both.modules()) >= set(tiny_pipe.modules()) | set(both.adapter_modules())
    assert tiny_pipe.adapter_modules() == {}


def test_ip_adapter_changes_the_clip(tiny_pipe, files):
    from zrealism_core.animation import animate
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    adapter = tiny_motion_adapter(max_seq_length=8)

    def clip(pipe, cfg):
        return np.stack(animate(pipe, IMG, motion_adapter=adapter, frames=2, steps=2, strength=1.0, cfg=cfg, seed=0,
                                depth_map=IMG, pose_map=IMG, color_lock=0.0))

    cut = np.stack(animate(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0), IMG, motion_adapter=adapter,
                           frames=2, steps=4, strength=1.0, cfg=3.0, seed=0, depth_map=IMG, pose_map=IMG, color_lock=0.0,
                           cfg_end=0.5))  # the clip's image embeds lose their uncond half mid-run too
    assert np.isfinite(cut).all()
    for cfg in (1.0, 3.0):
        plain = clip(tiny_pipe, cfg)
        assert np.array_equal(clip(tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, weight=0.0), cfg), plain)
        assert np.abs(clip(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0), cfg) - plain).max() > 1e-3
        assert np.array_equal(clip(tiny_pipe, cfg), plain)


def test_bad_inputs_are_refused_and_leave_the_pipe_unchanged(tiny_pipe, files, tiny_set):
    plain = run(tiny_pipe)
    with pytest.raises(ModelFileError, match=r"ip-adapter_sdxl\.safetensors is an IP-Adapter for SDXL"):
        tiny_pipe.with_ip_adapter(files["sdxl"], files["cv"], REF)
    with pytest.raises(ModelFileError, match=r"needs its image encoder.*clip_vision"):
        tiny_pipe.with_ip_adapter(files["plain"], None, REF)
    with pytest.raises(ModelFileError, match=r"other-encoder\.safetensors is the wrong image encoder for ip-adapter_tiny"):
        tiny_pipe.with_ip_adapter(files["plain"], files["cv_other"], REF)
    with pytest.raises(ModelFileError, match=r"other-encoder\.safetensors is the wrong image encoder"):
        tiny_pipe.with_ip_adapter(files["plus"], files["cv_other"], REF)
    with pytest.raises(ModelFileError, match="not a CLIP vision model"):
        tiny_pipe.with_ip_adapter(files["plain"], tiny_set.depth_controlnet, REF)
    with pytest.raises(ModelFileError, match="is not an IP-Adapter"):
        tiny_pipe.with_ip_adapter(tiny_set.checkpoint, files["cv"], REF)
    for bad in (dict(weight=3.0), dict(weight=-0.1), dict(start=0.6, end=0.4)):
        with pytest.raises(InputError):
            tiny_pipe.with_ip_adapter(files["plain"], files["cv"], REF, **bad)
    assert np.array_equal(run(tiny_pipe), plain)


def test_encoder_without_projection(tiny_pipe, files, tmp_path):
    from safetensors.torch import load_file, save_file

    sd = {k: v for k, v in load_file(str(files["cv"])).items() if not k.startswith("visual_projection")}
    path = tmp_path / "no-projection.safetensors"
    save_file(sd, str(path))
    with pytest.raises(ModelFileError, match=r"no-projection\.safetensors has no visual projection"):
        tiny_pipe.with_ip_adapter(files["plain"], path, REF, weight=1.0)
    # plus adapters read the hidden states: the same file works and equals the full encoder's result
    a = run(tiny_pipe.with_ip_adapter(files["plus"], path, REF, weight=1.0))
    assert np.array_equal(a, run(tiny_pipe.with_ip_adapter(files["plus"], files["cv"], REF, weight=1.0)))
