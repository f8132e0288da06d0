"""zrealism_core.animate (animation.py) on tiny random-weight models: frames, determinism, fidelity at low strength,
FreeNoise, motion LoRA, UNet weight sharing, loop modes, colour lock, cancel and CPU fallback."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import CancelledError, InputError
from zrealism_core.animation import (
    animate, build_motion_unet, crossfade_tail, loop_tail_frames, motion_pipeline, shares_unet_weights,
)
from zrealism_core.testing.tiny_motion import tiny_motion_adapter, tiny_sparsectrl, write_tiny_motion_lora


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models gain nothing from 2 threads, and on a busy 2-core box OpenMP spin-waiting makes
    # them 5-10x slower; restore the setting for the other test modules
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def smooth_image(h, w, seed):
    """Low-frequency colour image (a drawing-like still, unlike white noise)."""
    rng = np.random.RandomState(seed)
    small = rng.rand(3, 4, 3).astype(np.float32)
    import cv2

    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1).astype(np.float32)


STILL = smooth_image(22, 29, 0)  # not multiples of 8: rounded like the still sampler, to 24x32
DEPTH = smooth_image(22, 29, 1)
POSE = smooth_image(22, 29, 2)


@pytest.fixture(scope="module")
def adapter():
    return tiny_motion_adapter(max_seq_length=8)  # a short window so FreeNoise is cheap to reach


def run(pipe, adapter, **kw):
    args = dict(motion_adapter=adapter, frames=3, steps=2, strength=1.0, cfg=1.0, seed=0,
                depth_map=DEPTH, pose_map=POSE, color_lock=0.0)
    args.update(kw)
    return animate(pipe, kw.pop("still", STILL), **{k: v for k, v in args.items() if k != "still"})


def test_frames_size_count_and_determinism(tiny_pipe, adapter):
    calls = []
    a = run(tiny_pipe, adapter, frames=5, callback=lambda s, t: calls.append((s, t)))
    assert len(a) == 5 and a.fps == 8.0
    for f in a:
        assert f.shape == (24, 32, 3) and f.dtype == np.float32  # 22x29 rounded to multiples of 8
        assert 0.0 <= f.min() and f.max() <= 1.0
    assert calls == [(1, 2), (2, 2)]  # int(steps * strength) steps reported
    b = run(tiny_pipe, adapter, frames=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # same seed -> same clip
    c = run(tiny_pipe, adapter, frames=5, seed=1)
    assert not np.allclose(a[0], c[0])
    # frames differ from each other (it is a clip, not a repeated picture)
    assert np.abs(a[0] - a[-1]).mean() > 1e-3


def test_the_motion_pipeline_lives_only_as_long_as_its_adapter(tiny_pipe):
    """The still pipeline keeps no motion adapter alive: once the adapter (the Motion Loader's output) is
    dropped, it and its motion pipeline are freed, while the still pipeline lives on."""
    import gc
    import weakref

    adapter = tiny_motion_adapter(seed=5)
    mp = motion_pipeline(tiny_pipe, adapter)
    assert motion_pipeline(tiny_pipe, adapter) is mp  # cached while both live
    gone = weakref.ref(adapter), weakref.ref(mp)
    del adapter, mp
    gc.collect()
    assert gone[0]() is None and gone[1]() is None


def test_motion_unet_shares_2d_weights_with_still_pipeline(tiny_pipe, adapter):
    mp = motion_pipeline(tiny_pipe, adapter)
    assert shares_unet_weights(tiny_pipe, mp)
    still_unet = dict(tiny_pipe.sd.unet.named_parameters())
    motion_unet = dict(mp.unet.named_parameters())
    assert motion_unet["conv_in.weight"].data_ptr() == still_unet["conv_in.weight"].data_ptr()
    attn = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert motion_unet[attn].data_ptr() == still_unet[attn].data_ptr()
    # the motion modules are the adapter's own tensors, too
    ad = dict(adapter.named_parameters())
    key = "down_blocks.0.motion_modules.0.proj_in.weight"
    assert motion_unet[key].data_ptr() == ad[key].data_ptr()
    # VAE, text encoder and ControlNets are the same objects
    assert mp.vae is tiny_pipe.sd.vae and mp.text_encoder is tiny_pipe.sd.text_encoder
    assert mp.controlnet is tiny_pipe.sd.controlnet
    # the motion pipeline has its own AnimateDiff scheduler; the still one is untouched
    assert mp.scheduler is not tiny_pipe.sd.scheduler
    assert mp.scheduler.config.beta_schedule == "linear" and mp.scheduler.config.timestep_spacing == "linspace"
    assert tiny_pipe.sd.scheduler.config.beta_schedule == "scaled_linear"
    # cached per (pipeline, adapter)
    assert motion_pipeline(tiny_pipe, adapter) is mp
    # the diffusers default (from_unet2d) would have copied them: our check notices that
    from diffusers import UNetMotionModel

    copied = UNetMotionModel.from_unet2d(tiny_pipe.sd.unet, adapter)
    assert copied.conv_in.weight.data_ptr() != tiny_pipe.sd.unet.conv_in.weight.data_ptr()


def test_build_motion_unet_runs_like_the_copying_constructor(tiny_pipe, adapter):
    from diffusers import UNetMotionModel

    shared = build_motion_unet(tiny_pipe.sd.unet, adapter)
    copied = UNetMotionModel.from_unet2d(tiny_pipe.sd.unet, adapter)
    x = torch.randn(1, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(3, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = shared(x, 10, encoder_hidden_states=text).sample
        b = copied(x, 10, encoder_hidden_states=text).sample
    assert torch.allclose(a, b, atol=1e-6)


def _vae_round_trip(pipe, img):
    vae = pipe.sd.vae
    x = torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        out = vae.decode(vae.encode(x).latent_dist.mode()).sample
    return ((out[0].permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1)


def _psnr(a, b):
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def test_low_strength_first_frame_stays_close_to_the_still(tiny_pipe, adapter):
    from zrealism_core.evaluation import evaluate

    still = smooth_image(24, 32, 3)
    # The random tiny VAE cannot reproduce any picture, so "close to the still" is measured against
    # what this VAE makes of the still (its encode/decode round trip): the best any strength can do.
    ref = _vae_round_trip(tiny_pipe, still)
    low = run(tiny_pipe, adapter, still=still, strength=0.1, steps=10)
    high = run(tiny_pipe, adapter, still=still, strength=1.0, steps=2)
    r_low, r_high = evaluate(ref, low[0]), evaluate(ref, high[0])
    assert r_low.scores["color"] > r_high.scores["color"] + 0.1
    assert r_low.scores["edge"] > r_high.scores["edge"] + 0.1
    assert _psnr(low[0], ref) > _psnr(high[0], ref) + 2.0
    # the last frame too: every frame starts from the still
    assert evaluate(ref, low[-1]).scores["color"] > evaluate(ref, high[-1]).scores["color"]


def test_free_noise_windows_for_clips_longer_than_the_adapter(tiny_pipe, adapter):
    clip = run(tiny_pipe, adapter, frames=12, still=STILL[:16, :16], depth_map=DEPTH[:16, :16], pose_map=POSE[:16, :16])
    assert len(clip) == 12
    mp = motion_pipeline(tiny_pipe, adapter)
    assert mp.free_noise_enabled and mp._free_noise_context_length == 8
    # a short clip switches it off again
    run(tiny_pipe, adapter, frames=3, still=STILL[:16, :16], depth_map=DEPTH[:16, :16], pose_map=POSE[:16, :16])
    assert not mp.free_noise_enabled


def test_free_noise_past_32_frames_with_a_32_frame_adapter(tiny_pipe):
    ad32 = tiny_motion_adapter(max_seq_length=32)
    small = dict(still=STILL[:16, :16], depth_map=DEPTH[:16, :16], pose_map=POSE[:16, :16])
    clip = run(tiny_pipe, ad32, frames=34, **small)
    assert len(clip) == 34 and clip[0].shape == (16, 16, 3)
    assert motion_pipeline(tiny_pipe, ad32).free_noise_enabled


def test_motion_lora_changes_output_and_unloading_restores_it(tiny_pipe, adapter, tmp_path):
    lora = write_tiny_motion_lora(tmp_path / "v2_lora_Tiny.safetensors")  # guoyww's key layout
    base = run(tiny_pipe, adapter)
    with_lora = run(tiny_pipe, adapter, motion_lora=lora, motion_lora_strength=1.0)
    assert max(float(np.abs(x - y).max()) for x, y in zip(base, with_lora)) > 1e-2
    mp = motion_pipeline(tiny_pipe, adapter)
    assert mp.get_active_adapters() == []  # unloaded after the call
    assert shares_unet_weights(tiny_pipe, mp)
    assert not any("lora" in name for name, _ in mp.unet.named_parameters())
    again = run(tiny_pipe, adapter)
    # same weights and modules again; float noise of re-created kernels only (seen: 5e-7)
    assert max(float(np.abs(x - y).max()) for x, y in zip(base, again)) < 1e-5


def test_loop_modes():
    frames = [np.full((2, 2, 3), v, np.float32) for v in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)]
    out = crossfade_tail(frames, 4)  # 4 frames wanted, 2 tail frames generated
    assert len(out) == 4
    # frame 0 is mostly the continuation of the last frame (tail 0.4), frame 1 mostly the head (0.1)
    assert out[0][0, 0, 0] == pytest.approx(1 / 3 * 0.0 + 2 / 3 * 0.4)
    assert out[1][0, 0, 0] == pytest.approx(2 / 3 * 0.1 + 1 / 3 * 0.5)
    assert out[3][0, 0, 0] == pytest.approx(0.3)
    assert loop_tail_frames(16) == 4 and loop_tail_frames(1) == 0


def test_loop_options_end_to_end(tiny_pipe, adapter):
    cross = run(tiny_pipe, adapter, frames=4, loop="crossfade")
    assert len(cross) == 4
    ping = run(tiny_pipe, adapter, frames=4, loop="pingpong")
    assert len(ping) == 6
    assert np.array_equal(ping[4], ping[2]) and np.array_equal(ping[5], ping[1])


def test_color_lock_pulls_frames_toward_the_still(tiny_pipe, adapter):
    from zrealism_core.imaging.colour import rgb_to_lab

    still = smooth_image(24, 32, 4)
    free = run(tiny_pipe, adapter, still=still, color_lock=0.0)
    locked = run(tiny_pipe, adapter, still=still, color_lock=1.0)
    target = rgb_to_lab(still).reshape(-1, 3).mean(0)
    half = run(tiny_pipe, adapter, still=still, color_lock=0.5)

    def dist(frame):  # summed LAB mean difference to the still
        return float(np.abs(rgb_to_lab(frame).reshape(-1, 3).mean(0) - target).sum())

    # full lock leaves only what clipping to the RGB gamut costs
    assert dist(locked[2]) < dist(half[2]) < dist(free[2])
    assert dist(locked[2]) < dist(free[2]) / 10


def test_motion_adapter_from_a_file_path(tiny_pipe, tmp_path):
    from zrealism_core.testing.tiny_motion import write_tiny_motion_adapter

    path = write_tiny_motion_adapter(tmp_path / "mm_tiny_v2.safetensors", max_seq_length=8)
    from_file = run(tiny_pipe, str(path))
    in_memory = run(tiny_pipe, tiny_motion_adapter(max_seq_length=8))
    assert all(np.allclose(x, y, atol=1e-5) for x, y in zip(from_file, in_memory))


def test_sparsectrl_keyframe_mode(tiny_pipe, adapter):
    sc = tiny_sparsectrl()
    clip = run(tiny_pipe, adapter, sparsectrl=sc, frames=4, depth_map=None, pose_map=None)  # maps unused
    assert len(clip) == 4 and clip[0].shape == (24, 32, 3)
    plain = run(tiny_pipe, adapter, frames=4)
    assert not np.allclose(clip[0], plain[0])
    with pytest.raises(InputError, match="at most 8 frames"):
        run(tiny_pipe, adapter, sparsectrl=sc, frames=9)


def test_cancel_from_callback_and_event(tiny_pipe, adapter):
    class FakeInterrupt(Exception):
        pass

    def cb(step, total):
        if step == 1:
            raise FakeInterrupt()

    calls = []
    h = tiny_pipe.sd.controlnet.nets[0].register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        with pytest.raises(FakeInterrupt):  # ComfyUI's own exception passes through unchanged
            run(tiny_pipe, adapter, steps=6, callback=cb)
        assert len(calls) == 1  # stopped right after the first step
        ev = threading.Event()
        with pytest.raises(CancelledError):
            run(tiny_pipe, adapter, steps=6, cancel=ev, callback=lambda s, t: ev.set() if s == 2 else None)
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(CancelledError):  # already cancelled: nothing runs
            run(tiny_pipe, adapter, cancel=ev)
        assert calls == []
    finally:
        h.remove()
    assert len(run(tiny_pipe, adapter)) == 3  # usable after a cancel


def test_simulated_cuda_oom_falls_back_to_cpu(tiny_pipe, adapter, caplog):
    from zrealism_core.engine import ZRealismPipeline

    fake = ZRealismPipeline(tiny_pipe.sd, device=torch.device("cuda"), dtype=torch.float32, fallback=True)
    placed, current = [], {}

    def prepare(attempt):  # stands in for moving the weights; they stay on the CPU here
        placed.append(attempt)
        current["device"] = attempt.device

    def oom_on_gpu(module, args):
        if current["device"].type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    mp = motion_pipeline(fake, adapter)
    h = mp.unet.register_forward_pre_hook(oom_on_gpu)
    import zrealism_core.animation as anim

    orig_placer = anim._placer
    try:
        # keep the motion parts on the CPU too (this machine has no GPU)
        anim._placer = lambda zp, mp_, sc, prep: prep
        with caplog.at_level("WARNING", logger="zrealism"):
            clip = run(fake, adapter, prepare=prepare, restore=lambda a: None)
    finally:
        anim._placer = orig_placer
        h.remove()
    # the one chain: as planned -> free the other models and retry -> offload -> CPU fp32
    assert [(a.device.type, a.offload, a.free_others) for a in placed] == [
        ("cuda", False, False), ("cuda", False, True), ("cuda", True, True), ("cpu", False, True)]
    plain = run(tiny_pipe, adapter)
    assert all(np.array_equal(x, y) for x, y in zip(clip, plain))  # same seed, same clip
    assert "out of memory" in caplog.text and "offload" in caplog.text


def test_oom_with_fallback_off_is_a_clear_error(tiny_pipe, adapter):
    from zrealism_core import ZRealismError
    from zrealism_core.engine import ZRealismPipeline

    fake = ZRealismPipeline(tiny_pipe.sd, device=torch.device("cuda"), dtype=torch.float32, fallback=False)
    mp = motion_pipeline(fake, adapter)

    def oom(module, args):
        raise torch.OutOfMemoryError("CUDA out of memory")

    h = mp.unet.register_forward_pre_hook(oom)
    import zrealism_core.animation as anim

    orig_placer = anim._placer
    try:
        anim._placer = lambda zp, mp_, sc, prep: prep
        with pytest.raises(ZRealismError, match="out of GPU memory.*fallback"):
            run(fake, adapter, prepare=lambda a: None)
    finally:
        anim._placer = orig_placer
        h.remove()


def test_missing_maps_are_detected_unless_the_net_is_off(tiny_pipe, adapter, monkeypatch):
    from zrealism_core.control import maps as control_maps

    seen = []
    monkeypatch.setattr(control_maps, "depth_map", lambda img, **kw: seen.append("depth") or np.zeros_like(img))
    monkeypatch.setattr(control_maps, "pose_map", lambda img, **kw: seen.append("pose") or np.zeros_like(img))
    run(tiny_pipe, adapter, depth_map=None, pose_map=None)
    assert seen == ["depth", "pose"]
    seen.clear()
    run(tiny_pipe, adapter, depth_map=None, pose_map=None, depth_scale=0.0, pose_scale=0.0)
    assert seen == []


@pytest.mark.parametrize("kw, match", [
    (dict(frames=0), "frames"),
    (dict(strength=0.0), "strength"),
    (dict(steps=2, strength=0.3), "no denoising step"),
    (dict(loop="bounce"), "loop"),
    (dict(color_lock=2.0), "color_lock"),
    (dict(fps=0), "fps"),
])
def test_bad_parameters_are_input_errors(tiny_pipe, adapter, kw, match):
    with pytest.raises(InputError, match=match):
        run(tiny_pipe, adapter, **kw)


def test_missing_motion_model_is_a_clear_error(tiny_pipe, tmp_path):
    from zrealism_core import ModelFileError

    with pytest.raises(ModelFileError, match="animatediff_models.*guoyww"):
        run(tiny_pipe, str(tmp_path / "mm_sd_v15_v2.ckpt"))
    with pytest.raises(InputError, match="motion_adapter is missing"):
        run(tiny_pipe, None)


def test_motion_model_that_does_not_fit_the_unet(tiny_pipe):
    from zrealism_core import ModelFileError

    wrong = tiny_motion_adapter(motion_layers_per_block=1)  # the tiny UNet has 2 layers per block
    with pytest.raises(ModelFileError, match="does not fit this checkpoint"):
        run(tiny_pipe, wrong)
