"""What used to happen silently now says so (issue 11): empty ControlNet windows, params that turn a
net off, too-small maps, the evaluator's source-mask rule, loop-safe folder walks, SparseCtrl's
scheduler; plus Cancel between detection stages / decode chunks / model-file loads, and FreeNoise
sharing the motion weights."""
from __future__ import annotations

import importlib
import os
import threading

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import CancelledError, InputError
from zrealism_core.engine import transform

IMG = rand_image(16, 16, 0)
MAPS = dict(depth_map=rand_image(16, 16, 1), pose_map=rand_image(16, 16, 2))


def test_empty_window_is_reported(tiny_pipe):
    r = transform(tiny_pipe, IMG, steps=2, denoise=0.5, depth_start=0.6, depth_end=0.5, **MAPS)
    assert any(n.startswith("depth ControlNet off: start >= end") for n in r.notes), r.notes
    quiet = transform(tiny_pipe, IMG, steps=2, denoise=0.5, depth_scale=0.0, depth_start=0.6, depth_end=0.5, **MAPS)
    assert not any("start >= end" in n for n in quiet.notes)  # already off by its scale: nothing to say


def test_params_report_which_widget_turned_a_net_off(pack, comfy_fakes, tiny_set):
    from test_engine_nodes import SAMPLE, _install_models, _load, _maps, _sampler

    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    out = _sampler(pack).sample(pipe, torch.from_numpy(IMG[None]), depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)),
                                params={"control_end": 0.5}, **dict(SAMPLE, pose_start=0.6))
    report = out[3]
    assert "pose_start widget (0.6)" in report and "connected params" in report, report
    assert "pose ControlNet off: start >= end" in report


def test_tiny_maps_are_refused(tiny_pipe):
    big = rand_image(256, 256, 0)
    with pytest.raises(InputError, match=r"depth map is 1x1 px.*at least 64 px"):
        transform(tiny_pipe, big, steps=2, denoise=0.5, depth_map=np.ones((1, 1, 3), np.float32), pose_map=big)
    # a map at the image's own size is fine even when the image is smaller than 64 px
    transform(tiny_pipe, IMG, steps=1, denoise=1.0, **MAPS)


def test_evaluator_source_masks_follow_the_sources_rule(pack, comfy_fakes):
    from zrealism_core.evaluation import evaluate_video

    src = [rand_image(32, 32, i) for i in range(2)]
    frames = [rand_image(32, 32, 5 + i) for i in range(2)]
    masks = [np.ones((32, 32), np.float32), np.zeros((32, 32), np.float32)]
    report = evaluate_video(src, frames, masks, control=False)  # one mask per source: accepted
    assert any("source mask is empty" in n for n in report.notes)  # ... and the second one was used
    with pytest.raises(InputError, match="3 source masks for 2 sources"):
        evaluate_video(src, frames, masks + masks[:1], control=False)
    node = pack.nodes.fidelity_evaluator.ZRealism_FidelityEvaluator()
    t = torch.from_numpy(np.stack(src))
    node_out = node.evaluate(t, torch.from_numpy(np.stack(frames)), mask=torch.from_numpy(np.stack(masks)))
    assert node_out  # the node takes one mask per source too (it used to refuse what its own check allowed)
    with pytest.raises(pack.zrealism_core.errors.InputError, match="one mask for all source images, or one per source image"):
        node.evaluate(t[:1], torch.from_numpy(np.stack(frames)), mask=torch.from_numpy(np.stack(masks)))


def test_folder_walks_survive_symlink_loops_and_are_bounded(pack, comfy_fakes, tmp_path):
    bridge = comfy_fakes.bridge
    root = comfy_fakes.models / "diffusers"
    (root / "a" / "model").mkdir(parents=True)
    (root / "a" / "model" / "model_index.json").write_text("{}")
    os.symlink(root / "a", root / "a" / "loop")  # a -> a/loop -> a ...
    deep = root.joinpath(*[f"d{i}" for i in range(bridge.MAX_WALK_DEPTH + 2)])
    deep.mkdir(parents=True)
    (deep / "model_index.json").write_text("{}")
    found = []
    done = threading.Event()

    def walk():
        found.extend(bridge.list_base_models())
        done.set()

    threading.Thread(target=walk, daemon=True).start()
    assert done.wait(30), "the folder walk hangs on a symlink loop"
    assert found.count("[diffusers] a/model") == 1
    assert not any(name.endswith("d7") or "/d7" in name for name in found)  # below the depth bound
    assert bridge.diffusers_folders("diffusers", marker="config.json", class_name="MotionAdapter") == []  # the same walk


def test_sparsectrl_says_it_samples_with_ddim(tiny_pipe):
    from zrealism_core.animation import animate
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter, tiny_sparsectrl

    clip = animate(tiny_pipe, IMG, motion_adapter=tiny_motion_adapter(), sparsectrl=tiny_sparsectrl(), frames=2,
                   steps=2, strength=0.5, scheduler="euler", color_lock=0.0)
    assert any("scheduler 'euler' not used: SparseCtrl keyframe mode samples with DDIM" in n for n in clip.notes), clip.notes


# ------------------------------------------------------------------ cancel

def test_cancel_during_detection_stops_before_the_next_stage(tiny_pipe, monkeypatch):
    control_maps = importlib.import_module("zrealism_core.control.maps")
    stop = threading.Event()
    ran = []

    def depth_map(image, **kw):
        ran.append("depth")
        stop.set()  # the user presses Cancel while the depth detector runs
        return np.full(image.shape, 0.5, np.float32)

    def pose_map(image, **kw):
        ran.append("pose")
        return np.zeros(image.shape, np.float32)

    monkeypatch.setattr(control_maps, "depth_map", depth_map)
    monkeypatch.setattr(control_maps, "pose_map", pose_map)
    with pytest.raises(CancelledError):
        transform(tiny_pipe, IMG, steps=2, denoise=0.5, cancel=stop)
    assert ran == ["depth"]


def test_cancel_during_decode_stops_between_chunks(tiny_pipe):
    from zrealism_core.animation import animate
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    stop = threading.Event()
    chunks = []

    def decoded(module, args, output):
        chunks.append(1)
        stop.set()  # Cancel pressed while the first chunk decodes

    h = tiny_pipe.sd.vae.decoder.register_forward_hook(decoded)
    try:
        with pytest.raises(CancelledError, match="between VAE decode chunks"):
            animate(tiny_pipe, IMG, motion_adapter=tiny_motion_adapter(), frames=4, steps=1, strength=1.0,
                    decode_chunk_size=1, color_lock=0.0, cancel=lambda: stop.is_set() and len(chunks) > 0, **MAPS)
    finally:
        h.remove()
    assert len(chunks) == 1  # 4 chunks were due; the second never started


def test_cancel_between_model_file_loads(tiny_set):
    from zrealism_core.engine import load_pipeline

    loaders = importlib.import_module("zrealism_core.models.loaders")
    loaded = []
    real = loaders.load_controlnet
    stop = threading.Event()

    def load_controlnet(*a, **kw):
        loaded.append(a[1])
        stop.set()  # Cancel pressed while the first ControlNet loads
        return real(*a, **kw)

    loaders.load_controlnet = load_controlnet
    try:
        with pytest.raises(CancelledError, match="between model-file loads"):
            load_pipeline(tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cpu",
                          config=tiny_set.config, cache=False, cancel=stop)
    finally:
        loaders.load_controlnet = real
    assert loaded == ["depth"]


# ------------------------------------------------------------------ FreeNoise

def test_freenoise_clip_shares_the_motion_weights(tiny_pipe):
    """A 34-frame clip (longer than the 32-frame window) runs FreeNoise windows on the very tensors
    of the still UNet and the motion adapter: no weight copies."""
    from zrealism_core import animation
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    adapter = tiny_motion_adapter(max_seq_length=32)
    clip = animation.animate(tiny_pipe, rand_image(8, 8, 0), motion_adapter=adapter, frames=34, steps=1, strength=1.0,
                             cfg=1.0, color_lock=0.0, depth_map=rand_image(8, 8, 1), pose_map=rand_image(8, 8, 2))
    assert len(clip) == 34
    mp = animation.motion_pipeline(tiny_pipe, adapter)
    assert mp.free_noise_enabled
    sources = {p.data_ptr() for m in (tiny_pipe.sd.unet, adapter) for p in m.parameters()}
    params = list(mp.unet.parameters())
    assert params and all(p.data_ptr() in sources for p in params)
    motion_ptrs = {p.data_ptr() for p in adapter.parameters()}
    assert motion_ptrs <= {p.data_ptr() for p in params}  # every motion weight is in use, none copied
