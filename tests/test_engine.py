"""Engine behaviour with tiny random-weight models (zrealism_core.engine.transform)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import CancelledError, InputError
from zrealism_core.engine import ZRealismPipeline, round_to_8, transform

IMG = rand_image(36, 44, 0)
DEPTH = rand_image(36, 44, 1)
POSE = rand_image(36, 44, 2)


def run(pipe, **kw):
    args = dict(depth_map=DEPTH, pose_map=POSE, steps=4, denoise=0.5, seed=0)
    args.update(kw)
    return transform(pipe, kw.pop("image", IMG), **{k: v for k, v in args.items() if k != "image"})


def count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda m, i, o: calls.append(1))
    return calls, handle


def test_output_shape_and_maps(tiny_pipe):
    r = run(tiny_pipe)
    assert round_to_8(36, 44) == (40, 48) and round_to_8(3, 12) == (8, 16)
    assert r.image.shape == (40, 48, 3) and r.image.dtype == np.float32
    assert r.depth_map.shape == r.pose_map.shape == (40, 48, 3)
    assert 0.0 <= r.image.min() and r.image.max() <= 1.0
    assert r.steps == 2 and r.device == "cpu" and r.dtype == "fp32" and r.fallback is None
    # the VAE decode is timed apart (a part of synthesizing), and its timing wrapper comes off
    assert 0 < r.timings["decoding"] < r.timings["synthesizing"] and "decode" not in tiny_pipe.sd.vae.__dict__


def test_pil_and_uint8_inputs(tiny_pipe):
    from PIL import Image

    u8 = (IMG * 255).astype(np.uint8)
    r = transform(tiny_pipe, Image.fromarray(u8), depth_map=Image.fromarray(u8), pose_map=u8, steps=2, denoise=0.5)
    assert r.image.shape == (40, 48, 3)


def test_same_seed_identical_different_seed_differs(tiny_pipe):
    a, b, c = run(tiny_pipe, seed=5), run(tiny_pipe, seed=5), run(tiny_pipe, seed=6)
    assert np.array_equal(a.image, b.image)
    assert np.abs(a.image - c.image).max() > 1e-3


def test_scale_zero_and_one_differ(tiny_pipe):
    off = run(tiny_pipe, depth_scale=0.0, pose_scale=0.0)
    depth_on = run(tiny_pipe, depth_scale=1.0, pose_scale=0.0)
    pose_on = run(tiny_pipe, depth_scale=0.0, pose_scale=1.0)
    assert np.abs(off.image - depth_on.image).max() > 1e-3
    assert np.abs(off.image - pose_on.image).max() > 1e-3
    # the map content matters, not just the net being on
    other = run(tiny_pipe, depth_scale=1.0, pose_scale=0.0, depth_map=rand_image(36, 44, 9))
    assert np.abs(other.image - depth_on.image).max() > 1e-4


def test_per_net_start_end_respected(tiny_pipe):
    depth_net, pose_net = tiny_pipe.controlnets
    d_calls, h1 = count_calls(depth_net)
    p_calls, h2 = count_calls(pose_net)
    try:
        run(tiny_pipe, steps=4, denoise=1.0, depth_start=0.0, depth_end=0.5, pose_start=0.5, pose_end=1.0,
            depth_scale=1.0, pose_scale=1.0)
        assert (len(d_calls), len(p_calls)) == (2, 2)  # 4 steps: depth acts in the first half, pose in the second
        d_calls.clear()
        p_calls.clear()
        run(tiny_pipe, steps=4, denoise=1.0, depth_start=0.0, depth_end=1.0, pose_start=0.0, pose_end=0.25)
        assert (len(d_calls), len(p_calls)) == (4, 1)
        d_calls.clear()
        p_calls.clear()
        run(tiny_pipe, steps=4, denoise=1.0, pose_start=0.6, pose_end=0.6)  # empty window = net off
        assert (len(d_calls), len(p_calls)) == (4, 0)
    finally:
        h1.remove()
        h2.remove()
    full = run(tiny_pipe, steps=4, denoise=1.0)
    early = run(tiny_pipe, steps=4, denoise=1.0, depth_end=0.5, pose_end=0.5)
    assert np.abs(full.image - early.image).max() > 1e-4


@pytest.mark.parametrize("steps,denoise,scheduler", [(10, 0.35, "dpmpp_2m_karras"), (7, 0.6, "euler"), (5, 1.0, "ddim")])
def test_progress_count_equals_executed_steps(tiny_pipe, steps, denoise, scheduler):
    seen = []
    unet_calls, h = count_calls(tiny_pipe.sd.unet)
    try:
        r = run(tiny_pipe, steps=steps, denoise=denoise, scheduler=scheduler, callback=lambda s, t: seen.append((s, t)))
    finally:
        h.remove()
    n = int(steps * denoise)
    assert seen == [(i, n) for i in range(1, n + 1)]
    assert r.steps == n == len(unet_calls)


def test_preview_callback_gets_the_latents_of_each_step(tiny_pipe):
    import torch

    seen = []
    r = run(tiny_pipe, steps=4, denoise=0.5, color_lock=0.0,
            preview=lambda s, t, latents: seen.append((s, t, latents.detach().clone())))
    assert [(s, t, tuple(x.shape)) for s, t, x in seen] == [(1, 2, (1, 4, 20, 24)), (2, 2, (1, 4, 20, 24))]  # tiny VAE: 1/2
    vae = tiny_pipe.sd.vae
    with torch.no_grad():  # the last step's latents are what the image is decoded from
        decoded = vae.decode(seen[-1][2] / vae.config.scaling_factor).sample[0]
    decoded = ((decoded / 2 + 0.5).clamp(0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(decoded - r.image).max() < 1e-5
    assert (seen[0][2] - seen[1][2]).abs().max() > 1e-4


class FakeInterrupt(Exception):
    """Stands in for ComfyUI's InterruptProcessingException."""


def test_cancel_from_callback_stops_within_one_step(tiny_pipe):
    unet_calls, h = count_calls(tiny_pipe.sd.unet)

    def cb(step, total):
        if step == 2:
            raise FakeInterrupt()

    try:
        with pytest.raises(FakeInterrupt):  # ComfyUI's own exception reaches ComfyUI unchanged
            run(tiny_pipe, steps=10, denoise=1.0, callback=cb)
    finally:
        h.remove()
    assert len(unet_calls) == 2


def test_cancel_event_raises_cancelled_error(tiny_pipe):
    ev = threading.Event()
    unet_calls, h = count_calls(tiny_pipe.sd.unet)
    try:
        with pytest.raises(CancelledError):
            run(tiny_pipe, steps=10, denoise=1.0, cancel=ev, callback=lambda s, t: ev.set() if s == 3 else None)
        assert len(unet_calls) == 3
        ev.set()
        unet_calls.clear()
        with pytest.raises(CancelledError):  # already cancelled: nothing runs
            run(tiny_pipe, cancel=ev)
        assert unet_calls == []
    finally:
        h.remove()
    # the pipeline still works after a cancel
    assert run(tiny_pipe).image.shape == (40, 48, 3)


def _gpu_view(pipe: ZRealismPipeline, fallback: bool = True) -> ZRealismPipeline:
    """The same modules, planned for a (pretend) CUDA GPU."""
    return ZRealismPipeline(pipe.sd, device=torch.device("cuda"), dtype=torch.float32, fallback=fallback)


def test_simulated_cuda_oom_falls_back_to_cpu(tiny_pipe, caplog):
    fake = _gpu_view(tiny_pipe)
    placed = []
    current = {}

    def prepare(attempt):  # stands in for moving the weights; they stay on the CPU here
        placed.append(attempt)
        current["device"] = attempt.device

    def oom_on_gpu(module, args):
        if current["device"].type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    h = fake.sd.unet.register_forward_pre_hook(oom_on_gpu)
    try:
        with caplog.at_level("WARNING", logger="zrealism"):
            r = transform(fake, IMG, depth_map=DEPTH, pose_map=POSE, steps=4, denoise=0.5, prepare=prepare)
    finally:
        h.remove()
    # the one chain: as planned -> free the other models and retry on the GPU -> offload -> CPU fp32
    assert [(a.device.type, a.offload, a.free_others) for a in placed] == [
        ("cuda", False, False), ("cuda", False, True), ("cuda", True, True), ("cpu", False, True)]
    assert r.device == "cpu" and r.dtype == "fp32" and "CPU" in r.fallback
    assert np.array_equal(r.image, run(tiny_pipe).image)  # same seed, same result as a plain CPU run
    assert "out of memory" in caplog.text and "offload" in caplog.text


def test_oom_with_fallback_off_is_a_clear_error(tiny_pipe):
    from zrealism_core import ZRealismError

    fake = _gpu_view(tiny_pipe, fallback=False)

    def oom(module, args):
        raise torch.OutOfMemoryError("CUDA out of memory")

    h = fake.sd.unet.register_forward_pre_hook(oom)
    try:
        with pytest.raises(ZRealismError, match="out of GPU memory.*fallback"):
            transform(fake, IMG, depth_map=DEPTH, pose_map=POSE, steps=2, denoise=0.5, prepare=lambda a: None)
    finally:
        h.remove()


def test_maps_detected_when_not_given(tiny_pipe, monkeypatch):
    from zrealism_core.control import maps as control_maps

    seen = []

    def fake_depth(image, **kw):
        seen.append(("depth", image.shape, kw["resolution"]))
        return np.full(image.shape, 0.5, np.float32)

    def fake_pose(image, **kw):
        seen.append(("pose", image.shape))
        return np.zeros(image.shape, np.float32)

    monkeypatch.setattr(control_maps, "depth_map", fake_depth)
    monkeypatch.setattr(control_maps, "pose_map", fake_pose)
    r = transform(tiny_pipe, IMG, steps=2, denoise=0.5, detect_resolution=256)
    assert seen == [("depth", (40, 48, 3), 256), ("pose", (40, 48, 3))]
    assert np.allclose(r.depth_map, 0.5, atol=1 / 255) and r.pose_map.max() == 0.0


def test_color_lock_strength(tiny_pipe):
    mask = np.zeros((36, 44), np.float32)
    mask[6:30, 8:36] = 1.0
    src = np.zeros((36, 44, 3), np.float32)
    src[..., 0] = 0.9  # strongly red source: the lock pulls the result toward it
    base = run(tiny_pipe, image=src)
    locked = run(tiny_pipe, image=src, mask=mask, color_lock=1.0)
    assert locked.image[8:28, 10:34, 0].mean() > base.image[8:28, 10:34, 0].mean()
    assert np.array_equal(locked.image[:3], base.image[:3])  # outside the mask: unchanged


def test_bad_parameters_are_input_errors(tiny_pipe):
    with pytest.raises(InputError, match="runs no step"):
        run(tiny_pipe, steps=3, denoise=0.2)
    with pytest.raises(InputError, match="denoise"):
        run(tiny_pipe, denoise=0.0)
    with pytest.raises(InputError, match="scheduler"):
        run(tiny_pipe, scheduler="nope")
    with pytest.raises(InputError, match="start/end"):
        run(tiny_pipe, depth_end=1.5)
    with pytest.raises(InputError, match="pipe"):
        transform(object(), IMG)
