"""The placement layer and the one OOM chain inside ComfyUI's memory manager (tests/fakes/comfy),
plus the memory estimate. The "GPU" here is bookkeeping in the fakes: out-of-memory errors are raised
by hooks while the chain is on a GPU attempt, and the CPU attempts really run on the tiny models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_set  # noqa: F401 (fixtures)
from test_engine_nodes import SAMPLE, _install_models, _load, _maps, _sampler


def _gpu_pipe(pack, comfy_fakes, tiny_set, device="cuda"):
    """The loader's pipeline, planned on a (fake) GPU as ComfyUI would give it."""
    _install_models(comfy_fakes.models, tiny_set)
    cpu = _load(pack)
    ZRealismPipeline = pack.zrealism_core.engine.ZRealismPipeline
    return ZRealismPipeline(cpu.sd, device=device, dtype=torch.float32, annotator_dirs=cpu.annotator_dirs)


class OOMWhileOnGPU:
    """A forward pre-hook that raises CUDA out-of-memory while our patchers are loaded on the GPU
    (i.e. the chain is on a GPU attempt), `times` times in all."""

    def __init__(self, mm, times):
        self.mm, self.left, self.raised = mm, times, 0

    def __call__(self, module, args):
        on_gpu = any(lm.device.type != "cpu" for lm in self.mm.current_loaded_models)
        if on_gpu and self.left > 0:
            self.left -= 1
            self.raised += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")


def _kinds(calls):
    return [c[0] for c in calls if c[0] in ("load_models_gpu", "free_memory")]


def test_chain_order_and_once_per_batch_in_comfyui(pack, comfy_fakes, tiny_set, caplog):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set)
    oom = OOMWhileOnGPU(mm, times=3)  # planned, free-others retry and offload all run out of memory
    h = pipe.sd.text_encoder.register_forward_pre_hook(oom)
    try:
        with caplog.at_level("WARNING", logger="zrealism"):
            out = _sampler(pack).sample(pipe, torch.from_numpy(np.stack([rand_image(16, 16, i) for i in range(4)])),
                                        depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)), **SAMPLE)
    finally:
        h.remove()
    assert out[0].shape == (4, 16, 16, 3) and oom.raised == 3
    loads = [c for c in mm.calls if c[0] == "load_models_gpu"]
    # 1. as planned: a whole load with the job's estimate; 2. free the others (ours kept), whole load again;
    # 3. offload: the others freed again, ComfyUI's partial load with twice the estimate; 4. CPU: ours unloaded
    assert _kinds(mm.calls) == ["load_models_gpu", "free_memory", "load_models_gpu", "free_memory", "load_models_gpu"]
    assert [c[2]["force_full_load"] for c in loads] == [True, True, False]
    est = loads[0][2]["memory_required"]
    assert est > 0 and loads[1][2]["memory_required"] == est and loads[2][2]["memory_required"] == 2 * est
    free = next(c for c in mm.calls if c[0] == "free_memory")
    ours = loads[0][1]
    assert free[1] >= est + sum(p.model_size() for p in ours)  # room for our weights and the activations
    assert {id(lm.model.model) for lm in free[3]} == {id(p.model) for p in ours}  # ... without evicting ours
    assert not mm.current_loaded_models  # the CPU step unloaded ours through ComfyUI
    # the batch fell back once: the other 3 images went straight to the CPU (no more loads)
    for reason in ("freeing the other models", "retrying with model offload", "running on the CPU in fp32"):
        assert caplog.text.count(reason) == 1
    assert pipe.dtype == torch.float32 and not pipe._offloaded


def test_next_job_starts_from_the_top(pack, comfy_fakes, tiny_set):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set)
    args = dict(depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)), **SAMPLE)
    h = pipe.sd.text_encoder.register_forward_pre_hook(OOMWhileOnGPU(mm, times=3))
    try:
        _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), **args)
    finally:
        h.remove()
    mm.calls.clear()
    _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), **args)  # no OOM this time
    assert _kinds(mm.calls) == ["load_models_gpu"] and mm.calls[0][2]["force_full_load"] is True


def _depth_detector_out_of_memory_off_cpu(pack, monkeypatch) -> list:
    """Replace the depth detector with one that runs out of memory anywhere but on the CPU; returns the
    list of devices it was asked to run on."""
    import importlib

    control_maps = importlib.import_module(pack.zrealism_core.__name__ + ".control.maps")
    devices = []

    def depth_map(image, *, device="cpu", **kw):
        devices.append(device)
        if device != "cpu":
            raise torch.OutOfMemoryError("MPS backend out of memory")
        return np.full(image.shape, 0.5, np.float32)

    monkeypatch.setattr(control_maps, "depth_map", depth_map)
    return devices


def test_detection_is_inside_the_chain(pack, comfy_fakes, tiny_set, monkeypatch):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set, device="mps")  # chain: planned, free others, CPU
    devices = _depth_detector_out_of_memory_off_cpu(pack, monkeypatch)
    out = _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), pose_map=_maps(1, (16, 16)), **SAMPLE)
    assert out[0].shape == (1, 16, 16, 3)
    assert devices == ["mps", "mps", "cpu"]  # planned -> free others -> CPU, for the detector too
    # detection loads none of our diffusion modules, but reserves its activations with ComfyUI
    first = next(c for c in mm.calls if c[0] == "load_models_gpu")
    assert first[1] == [] and first[2]["memory_required"] > 0


def test_clip_detection_is_inside_the_chain(pack, comfy_fakes, tiny_set, monkeypatch):
    """The Fuse node detects a missing map inside the batch's chain too: an out-of-memory there falls
    back like the job, and the clip then stays on the CPU (the batch fell back)."""
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set, device="mps")  # chain: planned, free others, CPU
    devices = _depth_detector_out_of_memory_off_cpu(pack, monkeypatch)
    motion = pack.zrealism_core.models.motion.MotionModel(adapter=tiny_motion_adapter())
    fuse = pack.nodes.animatediff_fuse.ZRealism_AnimateDiffFuse()
    frames, _, _ = fuse.animate(pipe, motion, torch.from_numpy(rand_image(16, 16, 0)[None]), "p", "", 2, 8.0, 0.5, 0, 2, 1.0,
                                "off", 0.0, 0.7, 0.7, 1.0, pose_map=_maps(1, (16, 16)))
    assert tuple(frames.shape) == (2, 16, 16, 3)
    assert devices == ["mps", "mps", "cpu"]  # planned -> free others -> CPU, for the clip's detector too
    first = next(c for c in mm.calls if c[0] == "load_models_gpu")
    assert first[1] == [] and first[2]["memory_required"] > 0  # detection reserves its activations, loads none of ours
    assert not [c for c in mm.calls[mm.calls.index(first) + 1:] if c[0] == "load_models_gpu" and c[1]]  # job stays on CPU


def test_decode_is_inside_the_chain(pack, comfy_fakes, tiny_set):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set, device="mps")
    oom = OOMWhileOnGPU(mm, times=2)
    h = pipe.sd.vae.decoder.register_forward_pre_hook(oom)
    try:
        out = _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]),
                                    depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)), **SAMPLE)
    finally:
        h.remove()
    assert oom.raised == 2 and out[0].shape == (1, 16, 16, 3)  # decode ran out twice, then the CPU finished


@pytest.mark.parametrize("state", ["LOW_VRAM", "NO_VRAM"])
def test_lowvram_means_partial_load(pack, comfy_fakes, tiny_set, state):
    mm = comfy_fakes.model_management
    mm.vram_state = getattr(mm.VRAMState, state)
    mm.FREE_VRAM = 2 * 2**30
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set)
    place = comfy_fakes.bridge.placement(pipe)
    Attempt = pack.zrealism_core.runtime.fallback.Attempt
    place.place(Attempt(torch.device("cuda"), torch.float32), memory_required=int(1.9 * 2**30))
    call = mm.calls[-1]
    assert call[0] == "load_models_gpu" and call[2]["force_full_load"] is False
    patchers = call[1]
    if state == "NO_VRAM":  # (under LOW_VRAM ComfyUI loads at least 128 MiB: all of a tiny model)
        assert all(p.loaded_size() < p.model_size() for p in patchers)  # ComfyUI left weights on the offload device
    assert place._hooks  # modules not on the GPU stream their weights there per call
    place.restore(Attempt(torch.device("cuda"), torch.float32))
    assert not place._hooks


def test_nets_that_are_off_are_not_loaded(pack, comfy_fakes, tiny_set):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set)
    _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), depth_map=_maps(1, (16, 16)),
                          pose_map=_maps(1, (16, 16)), **dict(SAMPLE, pose_scale=0.0))
    loaded = {id(p.model.inner) for c in mm.calls if c[0] == "load_models_gpu" for p in c[1]}
    mods = pipe.modules()
    assert id(mods["controlnet_pose"]) not in loaded and id(mods["controlnet_depth"]) in loaded and id(mods["unet"]) in loaded


def test_registered_modules_are_placed_and_tracked(pack, comfy_fakes, tiny_set):
    mm = comfy_fakes.model_management
    pipe = _gpu_pipe(pack, comfy_fakes, tiny_set)
    extra = torch.nn.Linear(4, 4)
    pipe.register_module("image_encoder", extra)
    assert pipe.modules()["image_encoder"] is extra
    _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), depth_map=_maps(1, (16, 16)),
                          pose_map=_maps(1, (16, 16)), **SAMPLE)
    loaded = [p.model.inner for c in mm.calls if c[0] == "load_models_gpu" for p in c[1]]
    assert any(m is extra for m in loaded)
    pipe.register_module("image_encoder", None)
    assert "image_encoder" not in pipe.modules()


def test_memory_estimate_grows_with_size_frames_and_nets(pack):
    est = pack.zrealism_core.runtime.placement.estimate_memory
    base = est(512, 512, dtype=torch.float16)
    assert est(768, 768, dtype=torch.float16) > base
    assert est(512, 512, dtype=torch.float16, frames=16, motion=True) > est(512, 512, dtype=torch.float16, frames=8, motion=True) > base
    assert est(512, 512, dtype=torch.float32) == 2 * base
    clip = dict(dtype=torch.float16, frames=16, motion=True)  # the UNet step dominates
    assert est(512, 512, **clip, controlnets=0) < est(512, 512, **clip)
    assert est(512, 512, **clip, cfg=False) < est(512, 512, **clip)
    assert est(512, 512, dtype=torch.float16, batch=2, decode_chunk=2) > base
    # order of magnitude: a 512x512 SD1.5 fp16 step with CFG and two ControlNets is a few hundred MiB to a few GiB
    assert 2**28 < base < 4 * 2**30


def test_clip_passes_memory_for_its_frames(pack, comfy_fakes, tiny_set, monkeypatch):
    """The clip's estimate counts its frames (what the fuse node hands to load_models_gpu)."""
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    mm = comfy_fakes.model_management
    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    fuse = pack.nodes.animatediff_fuse.ZRealism_AnimateDiffFuse()
    MotionModel = pack.zrealism_core.models.motion.MotionModel
    motion = MotionModel(adapter=tiny_motion_adapter())
    needs = []
    for frames in (2, 4):
        mm.calls.clear()
        fuse.animate(pipe, motion, torch.from_numpy(rand_image(16, 16, 0)[None]), "p", "", frames, 8.0, 0.5, 0, 2, 1.0,
                     "off", 0.0, 0.7, 0.7, 1.0, depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)))
        loads = [c for c in mm.calls if c[0] == "load_models_gpu"]
        assert any(p.model.inner is motion.adapter for p in loads[-1][1])  # the motion modules are tracked
        needs.append(loads[-1][2]["memory_required"])
    assert needs[1] > needs[0] > 0


def test_the_pipeline_keeps_no_motion_adapter_alive(pack, comfy_fakes, tiny_set):
    """Inside ComfyUI, after a clip, dropping the motion model (ComfyUI dropped the Motion Loader's output
    and unloaded it) frees the adapter: neither its ModelPatcher nor its motion pipeline is kept by the
    still pipeline."""
    import gc
    import weakref

    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    mm = comfy_fakes.model_management
    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    motion = pack.zrealism_core.models.motion.MotionModel(adapter=tiny_motion_adapter())
    fuse = pack.nodes.animatediff_fuse.ZRealism_AnimateDiffFuse()
    fuse.animate(pipe, motion, torch.from_numpy(rand_image(16, 16, 0)[None]), "p", "", 2, 8.0, 0.5, 0, 2, 1.0,
                 "off", 0.0, 0.7, 0.7, 1.0, depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)))
    assert any(lm.model.model.inner is motion.adapter for lm in mm.current_loaded_models)  # tracked while in use
    gone = weakref.ref(motion.adapter)
    mm.unload_all_models()
    del motion
    gc.collect()
    assert gone() is None


def test_detectors_live_on_the_pipeline_and_comfy_unload_drops_them(pack, comfy_fakes, tiny_set):
    """Inside ComfyUI: no module-level caches (the loader's output is the only owner), detectors are
    tracked by ComfyUI and its unload (POST /free, 'Unload models') drops them."""
    from zrealism_core.testing import tiny_annotators

    import importlib

    mm = comfy_fakes.model_management
    detectors = importlib.import_module(pack.zrealism_core.__name__ + ".models.detectors")
    engine = importlib.import_module(pack.zrealism_core.__name__ + ".engine")
    _install_models(comfy_fakes.models, tiny_set)
    folder = comfy_fakes.models / "zrealism_annotators"
    folder.mkdir(exist_ok=True)
    tiny_annotators.write_tiny_depth_anything(folder)
    tiny_annotators.write_openpose_files(folder)
    before = len(detectors._cache)
    pipe = _load(pack)
    assert pipe not in engine.cached_pipelines()  # ComfyUI's node cache holds it, not ours
    store = pipe.extras["detectors"]
    _sampler(pack).sample(pipe, torch.from_numpy(rand_image(32, 32, 0)[None]), **dict(SAMPLE, detect_resolution=64))
    assert len(store) == 2 and len(detectors._cache) == before  # depth + pose, on the pipeline only
    tracked = {id(lm.model.model.inner) for lm in mm.current_loaded_models}
    for detector in store.values():
        assert all(id(m) in tracked for m in detectors.detector_modules(detector))
    mm.unload_all_models()  # what POST /free {"unload_models": true} runs
    assert len(store) == 0
    # the next job loads them again
    _sampler(pack).sample(pipe, torch.from_numpy(rand_image(32, 32, 0)[None]), **dict(SAMPLE, detect_resolution=64))
    assert len(store) == 2
