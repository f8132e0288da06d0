"""cfg_end, control_budget and empty maps switching their net off (guidance.py, empty_maps.py), on tiny
models, for the still (engine.transform) and the clip (animation.animate). Batch sizes and call counts
are read with forward hooks on the real modules."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import InputError
from zrealism_core.animation import animate
from zrealism_core.control.empty import empty_reason
from zrealism_core.engine import transform
from zrealism_core.imaging.images import to_pil
from zrealism_core.runtime.guidance import cond_half, guided_steps
from zrealism_core.testing.tiny_motion import tiny_motion_adapter

IMG = rand_image(32, 40, 0)
DEPTH = rand_image(32, 40, 1)
POSE = rand_image(32, 40, 2)
BLACK = np.zeros((32, 40, 3), np.float32)


class Batches:
    """Records the batch (dim 0) of the first input of every forward of the given modules."""

    def __init__(self, **modules):
        self.seen = {name: [] for name in modules}
        self.handles = [m.register_forward_pre_hook(self._hook(name), with_kwargs=True) for name, m in modules.items()]

    def _hook(self, name):
        def hook(module, args, kwargs):
            sample = args[0] if args else kwargs["sample"]
            self.seen[name].append(int(sample.shape[0]))
        return hook

    def __enter__(self):
        return self.seen

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def still(pipe, **kw):
    args = dict(depth_map=DEPTH, pose_map=POSE, steps=8, denoise=0.5, seed=0, cfg=7.0, prompt="a photo", negative="drawing")
    args.update(kw)
    return transform(pipe, IMG, **args)


def plain_diffusers_still(pipe, steps=8, denoise=0.5, cut_after=None, control_end=1.0):
    """The same job in plain diffusers (stock MultiControlNetModel over the same nets). With `cut_after`,
    an independent cfg cutoff: a callback that slices prompt_embeds AND control_image after that many steps."""
    from diffusers import MultiControlNetModel, StableDiffusionControlNetImg2ImgPipeline
    from zrealism_core.models.schedulers import DEFAULT_SCHEDULER, make_scheduler

    sd = pipe.sd
    plain = StableDiffusionControlNetImg2ImgPipeline(
        vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=sd.unet,
        controlnet=MultiControlNetModel(list(sd.controlnet.nets)), scheduler=make_scheduler(DEFAULT_SCHEDULER, pipe.base_scheduler_config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    plain.set_progress_bar_config(disable=True)

    def cut(p, i, t, kw):
        if cut_after is not None and i + 1 == cut_after:
            p._guidance_scale = 0.0
            kw["prompt_embeds"] = kw["prompt_embeds"].chunk(2)[1]
            kw["control_image"] = [c.chunk(2)[1] for c in kw["control_image"]]
        return kw

    out = plain(
        prompt="a photo", negative_prompt="drawing", image=to_pil(IMG), control_image=[to_pil(DEPTH), to_pil(POSE)],
        strength=denoise, num_inference_steps=steps, guidance_scale=7.0, controlnet_conditioning_scale=[0.7, 0.7],
        control_guidance_start=[0.0, 0.0], control_guidance_end=[control_end, control_end], height=32, width=40,
        generator=torch.Generator("cpu").manual_seed(0), output_type="np",
        callback_on_step_end=cut, callback_on_step_end_tensor_inputs=["prompt_embeds", "control_image"],
    )
    return np.asarray(out.images[0], np.float32)


def nets(pipe):
    depth, pose = pipe.controlnets
    return dict(unet=pipe.sd.unet, depth=depth, pose=pose)


# ------------------------------------------------------------------ the rules

def test_layout_rule_and_step_count():
    x = torch.arange(6).reshape(6, 1)
    assert cond_half(x, 3).flatten().tolist() == [3, 4, 5]  # [uncond; cond] -> the second half
    assert cond_half(x, 6) is x and cond_half(torch.tensor(5.0), 1).ndim == 0  # not doubled / scalar: as is
    assert [guided_steps(c, 13) for c in (1.0, 0.5, 0.0, 0.99)] == [13, 6, 0, 12]


def test_empty_map_rules():
    assert empty_reason("pose", BLACK, detected=True) == "no person found"
    assert "no keypoints" in empty_reason("pose", BLACK + 3 / 255, detected=False)  # compression noise is still black
    assert empty_reason("pose", POSE, detected=True) is None
    assert "no contrast" in empty_reason("depth", np.full((8, 8, 3), 0.4, np.float32), detected=False)
    assert empty_reason("depth", DEPTH, detected=False) is None


# ------------------------------------------------------------------ still

def test_defaults_are_bit_identical_to_plain_diffusers(tiny_pipe):
    ref = plain_diffusers_still(tiny_pipe)
    assert np.array_equal(still(tiny_pipe).image, ref)
    assert np.array_equal(still(tiny_pipe, cfg_end=1.0, control_budget="full").image, ref)
    assert tiny_pipe.sd.controlnet.plan is None


def test_control_end_skips_the_nets_where_plain_diffusers_runs_them_at_scale_0(tiny_pipe):
    """Control end 0.8 on 4 executed steps: diffusers' window rule (step i of n is outside when i / n < start
    or (i + 1) / n > end) keeps steps 0-2. Ours calls each net on those 3 steps only; plain diffusers calls
    it on all 4 (with scale 0 on the last), and the two pictures agree."""
    n, end = 4, 0.8
    in_window = sum(not (i / n < 0.0 or (i + 1) / n > end) for i in range(n))
    assert in_window == 3
    with Batches(**nets(tiny_pipe)) as seen:
        r = still(tiny_pipe, depth_end=end, pose_end=end)
    assert (len(seen["unet"]), len(seen["depth"]), len(seen["pose"])) == (n, in_window, in_window)
    with Batches(**nets(tiny_pipe)) as seen:
        ref = plain_diffusers_still(tiny_pipe, control_end=end)
    assert (len(seen["unet"]), len(seen["depth"]), len(seen["pose"])) == (n, n, n)
    np.testing.assert_allclose(r.image, ref, atol=1e-6)
    assert np.abs(r.image - still(tiny_pipe).image).max() > 1e-4  # the window changed the picture


def test_cfg_end_half_runs_batch_1_after_half_the_steps(tiny_pipe):
    with Batches(**nets(tiny_pipe)) as seen:
        r = still(tiny_pipe, cfg_end=0.5)
    assert seen == {"unet": [2, 2, 1, 1], "depth": [2, 2, 1, 1], "pose": [2, 2, 1, 1]}  # 4 executed steps
    # the same numbers as an independent cutoff on plain diffusers that slices prompt AND control images
    np.testing.assert_allclose(r.image, plain_diffusers_still(tiny_pipe, cut_after=2), atol=1e-5)
    assert np.abs(r.image - still(tiny_pipe).image).max() > 1e-4
    assert tiny_pipe.sd.controlnet.plan is None and not tiny_pipe.sd.unet._forward_pre_hooks  # nothing left installed


def test_cfg_end_zero_is_cfg_one(tiny_pipe):
    with Batches(**nets(tiny_pipe)) as seen:
        r = still(tiny_pipe, cfg_end=0.0)
    assert seen["unet"] == [1, 1, 1, 1]
    assert np.array_equal(r.image, still(tiny_pipe, cfg=1.0).image)


def test_prompt_branch_halves_the_controlnet_batch_and_shares_residuals(tiny_pipe):
    residuals = []

    def grab(module, args, kwargs):
        residuals.append(kwargs["mid_block_additional_residual"])

    h = tiny_pipe.sd.unet.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with Batches(**nets(tiny_pipe)) as seen:
            r = still(tiny_pipe, control_budget="prompt_branch")
    finally:
        h.remove()
    assert seen == {"unet": [2, 2, 2, 2], "depth": [1, 1, 1, 1], "pose": [1, 1, 1, 1]}
    assert all(m.shape[0] == 2 and torch.equal(m[0], m[1]) for m in residuals)  # one residual for both branches
    assert np.abs(r.image - still(tiny_pipe).image).max() > 1e-5
    # without CFG there is nothing to share: the same as full
    assert np.array_equal(still(tiny_pipe, cfg=1.0, control_budget="prompt_branch").image, still(tiny_pipe, cfg=1.0).image)


def test_fast_combination_batches(tiny_pipe):
    with Batches(**nets(tiny_pipe)) as seen:
        still(tiny_pipe, cfg_end=0.5, control_budget="prompt_branch")
    assert seen == {"unet": [2, 2, 1, 1], "depth": [1, 1, 1, 1], "pose": [1, 1, 1, 1]}


def test_empty_pose_map_skips_the_pose_net_and_says_so(tiny_pipe, caplog):
    with caplog.at_level(logging.WARNING, logger="zrealism"), Batches(**nets(tiny_pipe)) as seen:
        r = still(tiny_pipe, pose_map=BLACK)
    assert seen["pose"] == [] and seen["depth"] == [2, 2, 2, 2]
    msg = "pose ControlNet off: the pose map has no keypoints (all black)"
    assert msg in r.notes and msg in caplog.text
    # the same image as asking for pose scale 0
    assert np.array_equal(r.image, still(tiny_pipe, pose_map=BLACK, pose_scale=0.0).image)


def test_detected_empty_pose_and_flat_depth(tiny_pipe, monkeypatch):
    import zrealism_core.control.maps as cm

    monkeypatch.setattr(cm, "pose_map", lambda *a, **k: np.zeros((32, 40, 3), np.float32))
    with Batches(**nets(tiny_pipe)) as seen:
        r = still(tiny_pipe, pose_map=None, depth_map=np.full((32, 40, 3), 0.5, np.float32))
    assert seen["pose"] == [] and seen["depth"] == [] and seen["unet"] == [2, 2, 2, 2]
    assert "pose ControlNet off: no person found" in r.notes
    assert any(n.startswith("depth ControlNet off: the depth map has no contrast") for n in r.notes)


@pytest.mark.parametrize("kw, match", [(dict(cfg_end=1.5), "cfg_end"), (dict(cfg_end="x"), "cfg_end"),
                                       (dict(control_budget="half"), "control_budget")])
def test_bad_values_are_input_errors(tiny_pipe, kw, match):
    with pytest.raises(InputError, match=match):
        still(tiny_pipe, **kw)


# ------------------------------------------------------------------ clip

FRAMES = 3


@pytest.fixture(scope="module")
def adapter():
    return tiny_motion_adapter(max_seq_length=8)


def clip(pipe, adapter, **kw):
    args = dict(motion_adapter=adapter, frames=FRAMES, steps=4, strength=1.0, cfg=7.0, seed=0, prompt="a photo",
                depth_map=DEPTH, pose_map=POSE, color_lock=0.0)
    args.update(kw)
    return animate(pipe, IMG, **args)


def motion_nets(pipe, adapter):
    from zrealism_core.animation import motion_pipeline

    mp = motion_pipeline(pipe, adapter)
    depth, pose = pipe.controlnets
    return dict(unet=mp.unet, depth=depth, pose=pose)


def test_clip_defaults_bit_identical_to_the_stock_multicontrolnet(tiny_pipe, adapter):
    from diffusers import MultiControlNetModel

    ours = clip(tiny_pipe, adapter)
    assert all(np.array_equal(a, b) for a, b in zip(ours, clip(tiny_pipe, adapter, cfg_end=1.0, control_budget="full")))
    skipping = tiny_pipe.sd.controlnet
    tiny_pipe.sd.controlnet = MultiControlNetModel(list(skipping.nets))  # the motion pipeline is rebuilt around it
    try:
        ref = clip(tiny_pipe, adapter)
    finally:
        tiny_pipe.sd.controlnet = skipping
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref))


def test_clip_cfg_end_prompt_branch_and_empty_pose(tiny_pipe, adapter, caplog):
    f = FRAMES
    mods = motion_nets(tiny_pipe, adapter)
    with Batches(**mods) as seen:
        half = clip(tiny_pipe, adapter, cfg_end=0.5)
    # motion UNet sample [B, C, F, h, w]: 2 -> 1; ControlNets see frames flattened [neg x F; pos x F] -> [pos x F]
    assert seen == {"unet": [2, 2, 1, 1], "depth": [2 * f, 2 * f, f, f], "pose": [2 * f, 2 * f, f, f]}
    assert all(np.isfinite(x).all() for x in half)
    with Batches(**mods) as seen:
        clip(tiny_pipe, adapter, control_budget="prompt_branch")
    assert seen == {"unet": [2, 2, 2, 2], "depth": [f] * 4, "pose": [f] * 4}
    with caplog.at_level(logging.WARNING, logger="zrealism"), Batches(**mods) as seen:
        c = clip(tiny_pipe, adapter, pose_map=BLACK)
    assert seen["pose"] == [] and seen["depth"] == [2 * f] * 4
    assert "pose ControlNet off: the pose map has no keypoints (all black)" in c.notes
    assert "pose ControlNet off" in caplog.text


# ------------------------------------------------------------------ preset and nodes

def test_fast_preset_overrides_only_its_settings():
    from zrealism_core.settings import apply_preset

    still_v = dict(steps=25, cfg=7.0, depth_end=0.8, pose_end=0.5, cfg_end=1.0, control_budget="full")
    fast = apply_preset(still_v, "fast")
    assert fast == dict(still_v, cfg_end=0.5, control_budget="prompt_branch", depth_end=0.6, pose_end=0.5, unet_reuse=2,
                        control_reuse=2, decode_channels_last=True)
    assert apply_preset(still_v, "quality") == still_v
    clip_v = dict(control_end=1.0, cfg_end=1.0, control_budget="full", depth_scale=0.7)
    assert apply_preset(clip_v, "fast", "clip") == dict(clip_v, control_end=0.6, cfg_end=0.5, control_budget="prompt_branch")
    with pytest.raises(InputError, match="preset"):
        apply_preset(still_v, "turbo")


def test_balanced_preset_is_quality_with_step_reuse_on_the_still_only():
    from zrealism_core.settings import DEFAULT_PRESET, apply_preset, resolve

    assert DEFAULT_PRESET == "balanced"
    still_v = dict(steps=25, cfg=7.0, depth_end=0.8, pose_end=0.5, cfg_end=1.0, control_budget="full", unet_reuse=1,
                   control_reuse=1)
    assert apply_preset(still_v, "balanced") == dict(still_v, unet_reuse=2, control_reuse=2, decode_channels_last=True)
    clip_v = dict(control_end=1.0, cfg_end=1.0, control_budget="full", depth_scale=0.7)
    assert apply_preset(clip_v, "balanced", "clip") == clip_v  # the motion UNet takes no step reuse
    assert resolve("still", still_v).values["unet_reuse"] == 2  # the resolver's default preset
    assert resolve("still", still_v, preset="quality").values == still_v
    assert resolve("still", still_v).preset_notes == [
        "balanced set unet_reuse 1 -> 2, control_reuse 1 -> 2, decode_channels_last True; preset quality runs every step in full"]
    assert resolve("still", still_v, preset="quality").preset_notes == []
    # an interval the user set stands under every preset (the node's widget, `zrealism run --unet-reuse 3`)
    for preset in ("balanced", "fast"):
        assert resolve("still", dict(still_v, unet_reuse=3), preset=preset).values["unet_reuse"] == 3
        assert resolve("still", still_v, explicit={"unet_reuse": 4}, preset=preset).values["unet_reuse"] == 4


def test_analyzer_report_states_the_fast_trade_off():
    from zrealism_core.analysis import analyze

    report = analyze(rand_image(48, 40, 3)).report
    assert "Preset 'fast'" in report and "steps unchanged" in report and "prompt adherence" in report
    assert "Preset 'balanced' (the default)" in report and "unet_reuse 2" in report and "Preset 'quality'" in report


def _pack_pipe(pack, comfy_fakes, tiny_set):
    from test_engine_nodes import _install_models, _load

    _install_models(comfy_fakes.models, tiny_set)
    return _load(pack)


def test_speed_inputs_are_last_and_optional(pack):
    for node_id in ("ZRealism_DualControlNetSampler", "ZRealism_AnimateDiffFuse"):
        spec = pack.nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
        tail = ["cfg_end", "control_budget", "preset"] + (["control_reuse", "unet_reuse"] if "Sampler" in node_id else [])
        assert list(spec["optional"])[-len(tail):] == tail  # the sampler's step-reuse inputs after them (test_step_reuse)
        assert all(spec["optional"][k][1].get("tooltip") for k in ("cfg_end", "control_budget", "preset"))
        assert spec["optional"]["preset"][1]["default"] == "balanced" and spec["optional"]["cfg_end"][1]["default"] == 1.0


def test_sampler_node_fast_preset_and_empty_pose_map(pack, comfy_fakes, tiny_set):
    pipe = _pack_pipe(pack, comfy_fakes, tiny_set)
    sampler = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_DualControlNetSampler"]()
    args = dict(prompt="photo", negative="drawing", seed=3, steps=8, cfg=7.0, denoise=0.5, depth_scale=0.7,
                pose_scale=0.7, depth_start=0.0, depth_end=1.0, pose_start=0.0, pose_end=1.0,
                scheduler="dpmpp_2m_karras", color_lock=0.0)
    image = torch.from_numpy(IMG[None])
    depth, pose = pipe.controlnets
    with Batches(unet=pipe.sd.unet, depth=depth, pose=pose) as seen:
        _, _, _, report = sampler.sample(pipe, image, depth_map=torch.from_numpy(DEPTH[None]),
                                         pose_map=torch.from_numpy(BLACK[None]), preset="fast", **args)
    # 4 steps: guidance on 2; depth on the prompt branch only, until 0.6 of the schedule; pose off (empty map);
    # unet_reuse 2: step 1 is a shallow UNet step, where the depth net runs its shallow part only (no forward)
    assert seen == {"unet": [2, 2, 1, 1], "depth": [1], "pose": []}
    assert "image 1: pose ControlNet off: the pose map has no keypoints (all black)" in report


def sampler_args(pose_map):
    """The sampler node's widgets for an 8 x 0.5 euler job on the test maps, both nets at 0.7 for the whole schedule."""
    return dict(prompt="photo", negative="drawing", seed=3, steps=8, cfg=7.0, denoise=0.5, depth_scale=0.7,
                pose_scale=0.7, depth_start=0.0, depth_end=1.0, pose_start=0.0, pose_end=1.0,
                scheduler="euler", color_lock=0.0, depth_map=torch.from_numpy(DEPTH[None]),
                pose_map=torch.from_numpy(pose_map[None]))


def test_sampler_node_default_preset_reuses_the_unet_and_quality_is_the_full_job(pack, comfy_fakes, tiny_set):
    pipe = _pack_pipe(pack, comfy_fakes, tiny_set)
    sampler = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_DualControlNetSampler"]()
    args = sampler_args(pose_map=DEPTH)
    image = torch.from_numpy(IMG[None])
    depth, pose = pipe.controlnets
    vae = pipe.sd.vae
    strides = [p.stride() for p in vae.parameters()]
    layouts = []  # per decode: channels-last or not
    def record(module, args):  # the layout the decoder's first conv runs in (its 3x3 weight: unambiguous)
        w = module.weight
        layouts.append(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous())

    hints = []  # the depth net's hint embedding runs in its full and its shallow pass, not where residuals are reused
    hooks = [vae.decoder.conv_in.register_forward_pre_hook(record),
             depth.controlnet_cond_embedding.register_forward_pre_hook(lambda m, a: hints.append(1))]
    out, seen, cl, report, hint = {}, {}, {}, {}, {}
    try:
        for preset in (None, "balanced", "quality"):  # None: left out, as an API prompt may
            layouts.clear()
            hints.clear()
            with Batches(depth=depth, pose=pose) as s:
                out[preset], *_, report[preset] = sampler.sample(pipe, image, **args, **({} if preset is None else {"preset": preset}))
            seen[preset], cl[preset], hint[preset] = dict(s), list(layouts), len(hints)
    finally:
        for h in hooks:
            h.remove()
    assert cl == {None: [True], "balanced": [True], "quality": [False]}  # balanced decodes channels-last
    # ... and puts the layout back: the encoder and a quality job after it see the module as before
    assert [p.stride() for p in vae.parameters()] == strides and "decode" not in vae.__dict__
    # 4 steps: balanced runs the full UNet (and the nets' forward) on steps 0 and 2 only; quality on every step
    assert seen[None] == seen["balanced"] == {"depth": [2, 2], "pose": [2, 2]}
    assert seen["quality"] == {"depth": [2] * 4, "pose": [2] * 4}
    # control_reuse 2: on steps 1 and 3 the nets' residuals of steps 0 and 2 serve (no shallow pass either)
    assert hint == {None: 2, "balanced": 2, "quality": 4}
    assert torch.equal(out[None], out["balanced"]) and not torch.equal(out["balanced"], out["quality"])
    # the report says what the default changed, so a picture unlike quality's says why
    assert "preset: balanced set control_reuse 1 -> 2, unet_reuse 1 -> 2, decode_channels_last True" in report[None]
    assert "preset:" not in report["quality"]

def test_fuse_node_cfg_end_and_budget(pack, comfy_fakes, tiny_set):
    from test_animate_nodes import FUSE_ARGS, _motion, frames_tensor

    pipe = _pack_pipe(pack, comfy_fakes, tiny_set)
    motion = _motion(pack, comfy_fakes)
    fuse = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_AnimateDiffFuse"]()
    maps = frames_tensor(1, 16, 16, 2)
    depth, pose = pipe.controlnets
    args = dict(FUSE_ARGS, steps=4, cfg=7.0)
    with Batches(depth=depth, pose=pose) as seen:
        fuse.animate(pipe, motion, frames_tensor(1, 16, 16, 1), depth_map=maps, pose_map=maps,
                     cfg_end=0.5, control_budget="prompt_branch", **args)
    f = args["frames"]
    assert seen == {"depth": [f] * 4, "pose": [f] * 4}  # prompt branch only, then one branch after the cutoff


def test_cli_run_preset_fast(tmp_path, capsys):
    import json

    from zrealism_core.cli import main
    from zrealism_core.commands.selftest import write_tiny_models_dir

    models = write_tiny_models_dir(tmp_path / "models")
    out = tmp_path / "out"
    rc = main(["run", "--sample", "--models", str(models), "--out", str(out), "--preset", "fast", "--size", "64",
               "--steps", "4", "--device", "cpu", "--dtype", "fp32", "--no-progress"])
    assert rc == 0
    s = json.loads((out / "report.json").read_text())["settings"]
    assert s["cfg_end"] == 0.5 and s["control_budget"] == "prompt_branch"
    assert s["depth_end"] <= 0.6 and s["pose_end"] <= 0.6 and s["steps"] == 4
    with pytest.raises(SystemExit) as exc:
        main(["run", "--sample", "--preset", "turbo"])
    assert exc.value.code == 2


def test_clip_cfg_end_with_an_ip_adapter_slices_the_image_embeds(tiny_pipe, adapter, tmp_path):
    from zrealism_core.testing import tiny_ip_adapter as tip

    ip = tip.write_tiny_ip_adapter(tmp_path / "ip-adapter-plus_tiny.safetensors", "plus")
    cv = tip.write_tiny_clip_vision(tmp_path / "tiny-clip-vision.safetensors")
    view = tiny_pipe.with_ip_adapter(ip, cv, rand_image(40, 48, 5), weight=1.0)
    mods = motion_nets(tiny_pipe, adapter)
    with Batches(unet=mods["unet"]) as seen:
        cut = clip(view, adapter, cfg_end=0.5, control_budget="prompt_branch")
    assert seen["unet"] == [2, 2, 1, 1]
    full = clip(view, adapter)
    assert all(np.isfinite(f).all() for f in cut) and np.abs(np.stack(cut) - np.stack(full)).max() > 1e-4


def test_detail_net_is_sliced_and_budgeted_like_the_others_and_a_flat_detail_map_is_off():
    from test_detail_net import _detail_pipe

    pipe = _detail_pipe()
    depth, pose, detail = pipe.controlnets
    lines = rand_image(32, 40, 7)
    with Batches(unet=pipe.sd.unet, depth=depth, pose=pose, detail=detail) as seen:
        r = still(pipe, detail_scale=0.6, detail_map=lines, cfg_end=0.5, control_budget="prompt_branch")
    assert seen == {"unet": [2, 2, 1, 1], "depth": [1] * 4, "pose": [1] * 4, "detail": [1] * 4}
    assert np.isfinite(r.image).all()
    with Batches(detail=detail) as seen:
        r = still(pipe, detail_scale=0.6, detail_map=np.full((32, 40, 3), 0.3, np.float32))
    assert seen["detail"] == [] and any(n.startswith("detail ControlNet off: the detail map has no contrast") for n in r.notes)
