"""The video nodes under fake ComfyUI modules: Motion Model Loader, AnimateDiff Fuse, Save Video."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import comfy_fakes, tiny_set  # noqa: F401 (fixtures)
from zrealism_core.testing.tiny_motion import write_tiny_motion_adapter, write_tiny_motion_lora, write_tiny_sparsectrl
from zrealism_core.imaging.video import read_video


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_animate.py
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_pipe(pack, tiny_set):  # noqa: F811
    """The tiny pipeline loaded through the pack's own core (the classes the nodes check against)."""
    import importlib

    engine = importlib.import_module(pack.__name__ + ".zrealism_core.engine")
    return engine.load_pipeline(
        tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cpu", config=tiny_set.config,
        cache=False,
    )


@pytest.fixture
def errors(pack):
    import importlib

    return importlib.import_module(pack.__name__ + ".zrealism_core.errors")


def node(pack, node_id):
    return pack.nodes.NODE_CLASS_MAPPINGS[node_id]()


def frames_tensor(n, h, w, seed=0):
    rng = np.random.RandomState(seed)
    return torch.from_numpy(rng.rand(n, h, w, 3).astype(np.float32))


def test_nodes_are_registered(pack):
    ids = set(pack.nodes.NODE_CLASS_MAPPINGS)
    assert {"ZRealism_MotionModelLoader", "ZRealism_AnimateDiffFuse", "ZRealism_SaveVideo"} <= ids
    assert pack.nodes.LOAD_ERRORS == {}


def test_motion_loader_lists_and_loads_files(pack, comfy_fakes):
    models = comfy_fakes.models
    write_tiny_motion_adapter(models / "animatediff_models" / "mm_tiny_v2.safetensors", max_seq_length=8)
    write_tiny_motion_adapter(models / "animatediff_models" / "tiny-adapter", layout="folder")
    write_tiny_motion_lora(models / "animatediff_motion_lora" / "v2_lora_TinyZoom.safetensors")
    write_tiny_sparsectrl(models / "controlnet" / "tiny-sparsectrl-rgb")
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_MotionModelLoader"]
    spec = cls.INPUT_TYPES()["required"]
    assert spec["motion_model"][0] == ["mm_tiny_v2.safetensors", "[diffusers] tiny-adapter"]
    assert spec["motion_lora"][0] == ["none", "v2_lora_TinyZoom.safetensors"]
    assert spec["sparsectrl"][0] == ["none", "[diffusers] tiny-sparsectrl-rgb"]
    (model,) = cls().load("mm_tiny_v2.safetensors", "v2_lora_TinyZoom.safetensors", 0.8, "[diffusers] tiny-sparsectrl-rgb")
    assert model.max_frames == 8 and model.loras[0].strength == 0.8 and model.sparsectrl is not None
    (folder_model,) = cls().load("[diffusers] tiny-adapter")
    assert folder_model.max_frames == 32 and folder_model.loras == [] and folder_model.sparsectrl is None


def test_motion_loader_registers_missing_folders_and_explains_missing_files(pack, comfy_fakes, errors):
    fp = comfy_fakes.folder_paths
    del fp.folder_names_and_paths["animatediff_models"]
    del fp.folder_names_and_paths["animatediff_motion_lora"]
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_MotionModelLoader"]
    spec = cls.INPUT_TYPES()["required"]
    assert "animatediff_models" in fp.folder_names_and_paths and "animatediff_motion_lora" in fp.folder_names_and_paths
    assert spec["motion_model"][0] == ["none"]  # empty folder: a placeholder that explains itself
    with pytest.raises(errors.ModelFileError, match="no motion model found.*animatediff_models.*guoyww"):
        cls().load("none")
    with pytest.raises(errors.ModelFileError, match="'mm_sd_v15_v2.ckpt' was not found.*animatediff_models"):
        cls().load("mm_sd_v15_v2.ckpt")


def _motion(pack, comfy_fakes, max_seq_length=8):
    write_tiny_motion_adapter(comfy_fakes.models / "animatediff_models" / "mm_tiny.safetensors", max_seq_length=max_seq_length)
    return pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_MotionModelLoader"]().load("mm_tiny.safetensors")[0]


FUSE_ARGS = dict(prompt="a photo", negative="", frames=3, fps=12.0, strength=1.0, seed=0, steps=2, cfg=1.0,
                 loop="off", color_lock=1.0, depth_scale=0.7, pose_scale=0.7, control_end=1.0)


def test_fuse_node_frames_fps_progress_and_memory_manager(pack, comfy_fakes, tiny_pipe):
    motion = _motion(pack, comfy_fakes)
    still = frames_tensor(1, 22, 29, 1)
    maps = frames_tensor(1, 22, 29, 2)
    fuse = node(pack, "ZRealism_AnimateDiffFuse")
    frames, fps, report = fuse.animate(tiny_pipe, motion, still, depth_map=maps, pose_map=maps, **FUSE_ARGS)
    assert tuple(frames.shape) == (3, 24, 32, 3) and frames.dtype == torch.float32 and fps == 12.0
    assert report == "Nothing was switched off or changed."
    # progress through ComfyUI's ProgressBar: one update per executed step, each with a preview made by
    # ComfyUI's previewer from one frame's latents (tiny VAE: 1/2 size)
    bar = comfy_fakes.utils.bars[-1]
    assert bar.updates == [(1, 2), (2, 2)]
    assert [p[0] for p in bar.previews] == ["JPEG", "JPEG"]
    assert [tuple(x.shape) for x in comfy_fakes.latent_preview.decoded] == [(1, 4, 12, 16)] * 2
    # the still pipeline's modules went through ComfyUI's memory manager (as in the still sampler)
    assert comfy_fakes.model_management.calls[0][0] == "load_models_gpu"
    # ...and so did the motion adapter, which only the clip uses
    loaded = [p.model.inner for p in comfy_fakes.model_management.calls[0][1]]
    assert any(m is motion.adapter for m in loaded)
    # batch of stills -> clips one after another, seeds differ
    frames2, _, _ = fuse.animate(tiny_pipe, motion, frames_tensor(2, 22, 29, 1), depth_map=maps, pose_map=maps, **FUSE_ARGS)
    assert tuple(frames2.shape) == (6, 24, 32, 3)
    assert torch.equal(frames2[:3], frames) and not torch.equal(frames2[3:], frames)


def test_clip_preview_shows_the_middle_frame(pack, comfy_fakes):
    lp = comfy_fakes.latent_preview
    preview = pack.nodes.bridge.preview_progress(2)
    latents = torch.arange(2 * 4 * 5 * 3 * 2, dtype=torch.float16).reshape(2, 4, 5, 3, 2)  # [B, C, F, h, w]
    preview(1, 2, latents)
    (x0,) = lp.decoded
    assert torch.equal(x0, latents[:1, :, 2].float())  # first clip, frame 5 // 2, in fp32 (ComfyUI's previewers)
    assert lp.calls[0][1].taesd_decoder_name == "taesd_decoder"  # SD1.5's format: TAESD when vae_approx has it
    lp.method = "none"  # --preview-method none: progress only
    quiet = pack.nodes.bridge.preview_progress(2)
    quiet(1, 2, latents)
    bar = comfy_fakes.utils.bars[-1]
    assert bar.updates == [(1, 2)] and bar.previews == [] and len(lp.decoded) == 1


def test_fuse_node_cancel_raises_comfy_interrupt(pack, comfy_fakes, tiny_pipe):
    motion = _motion(pack, comfy_fakes)
    mm = comfy_fakes.model_management
    maps = frames_tensor(1, 16, 16, 2)
    fuse = node(pack, "ZRealism_AnimateDiffFuse")
    calls = []
    h = tiny_pipe.sd.controlnet.nets[0].register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        orig = comfy_fakes.utils.ProgressBar.update_absolute

        def press_cancel(self, value, total=None, preview=None):
            mm.interrupt_current_processing(True)  # the user presses Cancel during step 1
            return orig(self, value, total, preview)

        comfy_fakes.utils.ProgressBar.update_absolute = press_cancel
        try:
            with pytest.raises(mm.InterruptProcessingException):
                fuse.animate(tiny_pipe, motion, frames_tensor(1, 16, 16, 1), depth_map=maps, pose_map=maps,
                             **dict(FUSE_ARGS, steps=6))
        finally:
            comfy_fakes.utils.ProgressBar.update_absolute = orig
    finally:
        h.remove()
    assert len(calls) == 1  # stopped after the first step


def test_fuse_node_params_replace_scales(pack, comfy_fakes, tiny_pipe, errors):
    import importlib

    RecommendedParams = importlib.import_module(pack.__name__ + ".zrealism_core.analysis").RecommendedParams

    motion = _motion(pack, comfy_fakes)
    fuse = node(pack, "ZRealism_AnimateDiffFuse")
    still = frames_tensor(1, 16, 16, 1)
    # no maps and no annotator files: detection would fail, but the params switch both nets off
    params = RecommendedParams(depth_scale=0.0, pose_scale=0.0, denoise=0.5, steps=20, cfg=7.0, control_end=0.8)
    frames, _, _ = fuse.animate(tiny_pipe, motion, still, params=params, **FUSE_ARGS)
    assert tuple(frames.shape) == (3, 16, 16, 3)
    with pytest.raises(errors.ModelFileError, match="annotator"):
        fuse.animate(tiny_pipe, motion, still, **FUSE_ARGS)


def test_fuse_node_rejects_wrong_inputs(pack, comfy_fakes, tiny_pipe, errors):
    motion = _motion(pack, comfy_fakes)
    fuse = node(pack, "ZRealism_AnimateDiffFuse")
    still = frames_tensor(2, 16, 16, 1)
    with pytest.raises(errors.InputError, match="Model Loader"):
        fuse.animate(object(), motion, still, **FUSE_ARGS)
    with pytest.raises(errors.InputError, match="Motion Model Loader"):
        fuse.animate(tiny_pipe, object(), still, **FUSE_ARGS)
    with pytest.raises(errors.InputError, match="depth_map has a batch of 3"):
        fuse.animate(tiny_pipe, motion, still, depth_map=frames_tensor(3, 16, 16), **FUSE_ARGS)


@pytest.mark.parametrize("fmt", ["mp4", "gif", "webp"])
def test_save_video_writes_into_output_with_preview(pack, comfy_fakes, fmt):
    saver = node(pack, "ZRealism_SaveVideo")
    frames = frames_tensor(5, 24, 30, 3)
    out = saver.save(frames, 10.0, fmt, "ZRealism/clip")
    ui = out["ui"]
    assert ui["animated"] == (True,)
    entry = ui["images"][0]
    assert entry == {"filename": f"clip_00001_.{fmt}", "subfolder": "ZRealism", "type": "output"}
    path = out["result"][0]
    assert path.startswith(comfy_fakes.folder_paths.get_output_directory())
    back, fps = read_video(path)
    assert len(back) == 5 and back[0].shape == (24, 30, 3) and fps == pytest.approx(10.0)
    # the counter continues; nothing else is left in the folder (no temp files)
    second = saver.save(frames, 10.0, fmt, "ZRealism/clip")["ui"]["images"][0]["filename"]
    assert second == f"clip_00002_.{fmt}"
    import os

    assert sorted(os.listdir(os.path.dirname(path))) == [f"clip_00001_.{fmt}", f"clip_00002_.{fmt}"]


def test_save_video_rejects_paths_outside_output(pack, comfy_fakes, errors):
    saver = node(pack, "ZRealism_SaveVideo")
    with pytest.raises(errors.InputError, match="outside the output folder"):
        saver.save(frames_tensor(2, 8, 8), 8.0, "gif", "../../escape")
    out = saver.save(frames_tensor(2, 8, 8), 8.0, "gif", "plain")
    assert out["ui"]["images"][0] == {"filename": "plain_00001_.gif", "subfolder": "", "type": "output"}
    json.dumps(out["ui"])  # ComfyUI sends it to the browser as JSON


def test_save_video_fills_comfyui_prefix_tokens(pack, comfy_fakes):
    import time

    saver = node(pack, "ZRealism_SaveVideo")
    out = saver.save(frames_tensor(2, 24, 30, 3), 8.0, "gif", "ZRealism/%year%/clip_%width%x%height%")
    entry = out["ui"]["images"][0]
    assert entry == {"filename": "clip_30x24_00001_.gif", "subfolder": f"ZRealism/{time.localtime().tm_year}",
                     "type": "output"}
