"""control_reuse and unet_reuse (runtime/step_reuse.py, issue 20) on tiny models: off = bit-identical to the
job without them; on = the nets and the UNet's blocks are called the planned number of times (forward hooks
on the real modules), and the shallow path matches the full UNet where it must."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import InputError
from zrealism_core.engine import transform
from zrealism_core.runtime import step_reuse

IMG = rand_image(32, 40, 0)
DEPTH = rand_image(32, 40, 1)
POSE = rand_image(32, 40, 2)


def still(pipe, **kw):
    args = dict(depth_map=DEPTH, pose_map=POSE, steps=8, denoise=0.5, seed=0, cfg=7.0, prompt="a photo", negative="drawing")
    args.update(kw)
    return transform(pipe, IMG, **args)


class Calls:
    """Counts the forward calls of the given modules (name -> module)."""

    def __init__(self, **modules):
        self.n = {name: 0 for name in modules}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def hook(module, args, out):
            self.n[name] += 1
        return hook

    def __enter__(self):
        return self.n

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def modules(pipe):
    unet = pipe.sd.unet
    depth, pose = pipe.controlnets
    return dict(
        unet=unet, depth=depth, pose=pose,
        depth_hint=depth.controlnet_cond_embedding, pose_hint=pose.controlnet_cond_embedding,
        first_layer=unet.down_blocks[0].resnets[0],  # shallow: every step
        deep_down=unet.down_blocks[1], mid=unet.mid_block, deep_up=unet.up_blocks[0],  # deep: full steps only
        last_up=unet.up_blocks[-1],  # shallow: every step
    )


def test_off_is_bit_identical(tiny_pipe):
    ref = still(tiny_pipe)
    for kw in (dict(control_reuse=1), dict(unet_reuse=1), dict(control_reuse=1, unet_reuse=1)):
        got = still(tiny_pipe, **kw)
        assert np.array_equal(got.image, ref.image), kw
        assert got.reuse == {}
    # and with the other levers on: the default reuse settings change nothing there either
    fast = dict(cfg_end=0.5, control_budget="prompt_branch", depth_end=0.6, pose_end=0.6)
    assert np.array_equal(still(tiny_pipe, **fast).image, still(tiny_pipe, control_reuse=1, unet_reuse=1, **fast).image)


def test_control_reuse_calls_each_net_every_other_step(tiny_pipe):
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, control_reuse=2)  # 8 x 0.5 = 4 steps: the nets run on steps 0 and 2
    assert (n["depth"], n["pose"], n["unet"]) == (2, 2, 4)
    assert (r.reuse["control_run"], r.reuse["control_reused"]) == (2, 2)
    assert len(r.reuse["residual_change"]) == 1 and r.reuse["residual_change"][0] > 0  # step 2 against step 0
    full = still(tiny_pipe)
    assert not np.array_equal(r.image, full.image)  # it did reuse: a different picture ...
    assert np.abs(r.image - full.image).mean() < 0.1  # ... close to the full one
    with Calls(**modules(tiny_pipe)) as n:
        still(tiny_pipe, control_reuse=3)  # steps 0 and 3
    assert (n["depth"], n["pose"]) == (2, 2)


def test_control_reuse_inside_the_window_and_after_the_cutoff(tiny_pipe):
    # window end 0.6 of 4 steps: the nets act on steps 0 and 1 only (diffusers' rule): run on 0, reuse on 1
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, control_reuse=2, depth_end=0.6, pose_end=0.6)
    assert (n["depth"], n["pose"]) == (1, 1) and r.reuse["control_reused"] == 1
    # different windows per net: the scales differ between steps, so a cached entry is not reused across them
    with Calls(**modules(tiny_pipe)) as n:
        still(tiny_pipe, control_reuse=2, depth_end=0.6, pose_end=1.0)
    # steps 0,1: both nets (run, reuse); steps 2,3: pose only (new scales: run on 2, reuse on 3)
    assert (n["depth"], n["pose"]) == (1, 2)
    # after the cfg_end cutoff the cached CFG-doubled residuals serve batch 1 (their conditional half)
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, control_reuse=2, cfg_end=0.5)
    assert (n["depth"], n["pose"], n["unet"]) == (2, 2, 4) and r.reuse["control_reused"] == 2
    assert np.isfinite(r.image).all()


def test_unet_reuse_runs_the_deep_blocks_every_other_step(tiny_pipe):
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, unet_reuse=2)  # 4 steps: full on 0 and 2, shallow on 1 and 3
    assert n["unet"] == 4  # the UNet module is still called once per step
    assert (n["deep_down"], n["mid"], n["deep_up"]) == (2, 2, 2)
    assert (n["first_layer"], n["last_up"]) == (4, 4)
    # the ControlNets: full on the full steps; on the shallow ones only their shallow part (the hint embedding runs)
    assert (n["depth"], n["pose"]) == (2, 2) and (n["depth_hint"], n["pose_hint"]) == (4, 4)
    assert (r.reuse["unet_full"], r.reuse["unet_shallow"], r.reuse["control_shallow"]) == (2, 2, 2)
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, unet_reuse=3, control_reuse=2)
    # full UNet on steps 0 and 3. Nets: run on 0, reused on 1, shallow run on 2; step 3 would reuse, but a
    # shallow entry cannot serve a full step, so they run in full
    assert (n["deep_down"], n["mid"]) == (2, 2) and n["last_up"] == 4
    assert (n["depth"], n["pose"]) == (2, 2) and (n["depth_hint"], n["pose_hint"]) == (3, 3)
    assert (r.reuse["control_run"], r.reuse["control_shallow"], r.reuse["control_reused"]) == (2, 1, 1)


def test_unet_reuse_with_cfg_cutoff_and_prompt_branch(tiny_pipe):
    fast = dict(cfg_end=0.5, control_budget="prompt_branch", depth_end=0.6, pose_end=0.6)
    with Calls(**modules(tiny_pipe)) as n:
        r = still(tiny_pipe, unet_reuse=2, **fast)
    assert (n["deep_down"], n["last_up"]) == (2, 4) and np.isfinite(r.image).all()
    full = still(tiny_pipe, **fast)
    assert np.abs(r.image - full.image).mean() < 0.1


def test_shallow_path_equals_the_full_unet_on_the_same_deep_feature(tiny_pipe):
    """The shallow pass re-implements the UNet's first and last blocks: on the deep feature of the same
    inputs it must give the full UNet's output (what makes a shallow step a DeepCache step, not a new model)."""
    unet = tiny_pipe.sd.unet
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, unet.config.in_channels, 8, 8, generator=g)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    seen = {}
    h = unet.up_blocks[-1].register_forward_pre_hook(lambda m, a, k: seen.update(deep=k["hidden_states"]), with_kwargs=True)
    try:
        with torch.no_grad():
            full = unet(sample, 500, text).sample
    finally:
        h.remove()
    with torch.no_grad():
        shallow = step_reuse.shallow_unet(unet, seen["deep"], sample, 500, text).sample
    assert torch.allclose(full, shallow, atol=1e-5)
    # and the ControlNet's shallow residuals are its full residuals' first levels
    net = tiny_pipe.controlnets[0]
    side = 8 * tiny_pipe.sd.vae_scale_factor  # the hint at image size
    cond = torch.rand(2, 3, side, side, generator=g)
    with torch.no_grad():
        down, _ = net(sample, 500, text, controlnet_cond=cond, conditioning_scale=0.7, return_dict=False)
        part, mid = step_reuse.shallow_controlnet(net, sample, 500, text, cond, 0.7, levels=step_reuse.shallow_levels(unet))
    assert mid is None and len(part) == step_reuse.shallow_levels(unet)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(part, down))


@pytest.mark.parametrize("kw", [dict(control_reuse=0), dict(unet_reuse=9), dict(control_reuse=1.5), dict(unet_reuse=True)])
def test_bad_values_are_input_errors(tiny_pipe, kw):
    with pytest.raises(InputError, match="reuse"):
        still(tiny_pipe, **kw)


def test_encodings_are_kept_between_jobs_and_the_picture_is_the_same(tiny_pipe):
    """engine/encode_cache.py: a second job on the same drawing and prompts runs neither the text encoder nor the
    VAE encoder, and gives exactly the picture of a job with nothing kept."""
    from zrealism_core.engine import encode_cache

    sd = tiny_pipe.sd
    encode_cache.clear(tiny_pipe)
    with Calls(text=sd.text_encoder, vae_encoder=sd.vae.encoder, vae_decoder=sd.vae.decoder) as n:
        cold = still(tiny_pipe, seed=3)
    assert n == {"text": 2, "vae_encoder": 1, "vae_decoder": 1}  # prompt + negative
    with Calls(text=sd.text_encoder, vae_encoder=sd.vae.encoder, vae_decoder=sd.vae.decoder) as n:
        warm = still(tiny_pipe, seed=3)
        other_seed = still(tiny_pipe, seed=4, depth_scale=0.5)
    assert n == {"text": 0, "vae_encoder": 0, "vae_decoder": 2}
    assert np.array_equal(warm.image, cold.image)
    encode_cache.clear(tiny_pipe)
    assert np.array_equal(still(tiny_pipe, seed=4, depth_scale=0.5).image, other_seed.image)
    # another prompt, another drawing, or guidance off: encoded again
    with Calls(text=sd.text_encoder, vae_encoder=sd.vae.encoder) as n:
        still(tiny_pipe, prompt="another photo")
        transform(tiny_pipe, rand_image(32, 40, 9), depth_map=DEPTH, pose_map=POSE, steps=8, denoise=0.5, prompt="a photo",
                  negative="drawing")
        still(tiny_pipe, cfg=1.0)
    assert n == {"text": 2 + 0 + 1, "vae_encoder": 0 + 1 + 0}
    # the store stays small
    assert len(tiny_pipe.extras["encode_cache"]) <= 2 * encode_cache.MAX_ENTRIES


def test_sampler_node_inputs_are_last_optional_with_defaults_off(pack):
    spec = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_DualControlNetSampler"].INPUT_TYPES()
    assert list(spec["optional"])[-2:] == ["control_reuse", "unet_reuse"]
    for k in ("control_reuse", "unet_reuse"):
        kind, opts = spec["optional"][k]
        assert kind == "INT" and opts["default"] == 1 and opts["min"] == 1 and opts["tooltip"]
    fuse = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_AnimateDiffFuse"].INPUT_TYPES()
    assert "unet_reuse" not in fuse["optional"]  # the still only


def test_sampler_node_and_run_flags_reach_the_engine(pack, comfy_fakes, tiny_set, tmp_path):
    import json

    from test_guidance import _pack_pipe, sampler_args
    from zrealism_core.cli import main
    from zrealism_core.commands.selftest import write_tiny_models_dir

    pipe = _pack_pipe(pack, comfy_fakes, tiny_set)
    sampler = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_DualControlNetSampler"]()
    args = sampler_args(pose_map=POSE)
    with Calls(**modules(pipe)) as n:
        sampler.sample(pipe, torch.from_numpy(IMG[None]), control_reuse=2, unet_reuse=2, **args)
    # full UNet on steps 0, 2 (the nets run in full there), shallow on 1, 3 (the nets' residuals reused)
    assert (n["depth"], n["pose"], n["deep_down"], n["last_up"], n["depth_hint"]) == (2, 2, 2, 4, 2)
    models = write_tiny_models_dir(tmp_path / "models")
    rc = main(["run", "--sample", "--models", str(models), "--out", str(tmp_path / "out"), "--size", "64", "--steps", "4",
               "--device", "cpu", "--dtype", "fp32", "--no-progress", "--control-reuse", "2", "--unet-reuse", "3"])
    assert rc == 0
    s = json.loads((tmp_path / "out" / "report.json").read_text())["settings"]
    assert (s["control_reuse"], s["unet_reuse"]) == (2, 3)
