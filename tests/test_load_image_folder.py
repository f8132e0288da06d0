"""Load Image Folder: the core's folder listing and loading, the node under the ComfyUI fakes, and its
list of images of different sizes going through prep, analyzer, sampler, evaluator and Fuse the way
ComfyUI's executor runs them (tests/fakes/execution.py: once per list item unless INPUT_IS_LIST)."""
from __future__ import annotations

import importlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fakes.engine_fixtures import comfy_fakes, tiny_set  # noqa: F401 (fixtures)
from fakes.execution import run_node, widgets
from zrealism_core.errors import InputError
from zrealism_core.imaging.folder import image_files, load_folder
from zrealism_core.imaging.images import load_image
from zrealism_core.testing.tiny_motion import write_tiny_motion_adapter


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: see test_animate.py
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_pipe(pack, tiny_set):  # noqa: F811
    engine = importlib.import_module(pack.__name__ + ".zrealism_core.engine")
    return engine.load_pipeline(tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet,
                                device="cpu", config=tiny_set.config, cache=False)


def write_png(path, h, w, seed=0, alpha=False) -> np.ndarray:
    """A random picture (uint8); with `alpha`, its left half transparent."""
    rng = np.random.RandomState(seed)
    arr = rng.randint(0, 256, (h, w, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        arr[..., 3] = 255
        arr[:, : w // 2, 3] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def truncated_png(path, h=16, w=16) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def sheet(folder):
    """Two good images of different sizes (one with transparency) and one corrupt file."""
    a = write_png(folder / "hero_2.png", 24, 32, seed=1)
    b = write_png(folder / "hero_10.png", 40, 16, seed=2, alpha=True)
    (folder / "hero_3.png").write_bytes(b"not a png at all")
    return a, b


# ---------------------------------------------------------------- the core

def test_listing_natural_order_glob_limit(tmp_path):
    for name in ("hero_10.png", "hero_2.png", "Hero_1.JPG", "villain.webp", ".hidden.png"):
        write_png(tmp_path / name, 8, 8)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "hero_0.png", 8, 8)
    names = lambda files: [f.name for f in files]  # noqa: E731
    assert names(image_files(tmp_path)) == ["Hero_1.JPG", "hero_2.png", "hero_10.png", "villain.webp"]
    assert names(image_files(tmp_path, "HERO_1*")) == ["Hero_1.JPG", "hero_10.png"]  # case-insensitive
    assert names(image_files(tmp_path, "*.png", limit=1)) == ["hero_2.png"]
    assert names(image_files(tmp_path, "")) == names(image_files(tmp_path))
    with pytest.raises(InputError, match="matching '\\*.gif'"):
        image_files(tmp_path, "*.gif")
    with pytest.raises(InputError, match="folder not found"):
        image_files(tmp_path / "missing")
    with pytest.raises(InputError, match="limit"):
        image_files(tmp_path, limit=-1)


def test_bad_files_are_skipped_with_a_line_each(tmp_path):
    a, b = sheet(tmp_path)
    truncated_png(tmp_path / "hero_4.png")
    with pytest.raises(InputError, match="hero_4.png could not be read"):  # a truncated file is an input error too
        load_image(tmp_path / "hero_4.png")
    got = load_folder(tmp_path)
    assert [f.name for f in got.files] == ["hero_2.png", "hero_10.png"]
    np.testing.assert_allclose(got.images[0], a / 255.0, atol=1e-6)
    assert got.images[1].shape == (40, 16, 4)
    assert [s.split(":")[0] for s in got.skipped] == ["hero_3.png", "hero_4.png"]
    report = got.report()
    assert report.startswith("2 image(s) loaded, 2 skipped") and "hero_3.png" in report and "hero_4.png" in report
    assert [f.name for f in load_folder(tmp_path, limit=2).files] == ["hero_2.png"]  # the bad one is not replaced
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match="none of the images .* could be read"):
        load_folder(bad)


# ---------------------------------------------------------------- the node

def test_node_outputs_lists_each_image_its_size(pack, comfy_fakes):
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_LoadImageFolder"]
    assert len(cls.OUTPUT_IS_LIST) == len(cls.RETURN_TYPES)
    input_dir = comfy_fakes.folder_paths.get_input_directory()
    a, b = sheet(Path(input_dir) / "sheets")
    (images, masks, names, prefixes, count, report), _ = run_node(
        cls(), widgets(folder="sheets", pattern="*", limit=0, filename_prefix="ZRealism/"))
    assert [tuple(t.shape) for t in images] == [(1, 24, 32, 3), (1, 40, 16, 3)]
    assert all(t.dtype == torch.float32 for t in images)
    np.testing.assert_allclose(images[0][0].numpy(), a / 255.0, atol=1e-6)
    np.testing.assert_allclose(images[1][0].numpy(), b[..., :3] / 255.0, atol=1e-6)
    # Load Image's MASK: 1 where transparent; all 0 (same size) without transparency
    assert [tuple(m.shape) for m in masks] == [(1, 24, 32), (1, 40, 16)]
    assert float(masks[0].max()) == 0.0
    assert float(masks[1][0, :, :8].min()) == 1.0 and float(masks[1][0, :, 8:].max()) == 0.0
    assert names == ["hero_2.png", "hero_10.png"] and prefixes == ["ZRealism/hero_2", "ZRealism/hero_10"]
    assert count == [2] and "skipped hero_3.png" in report[0]
    # an absolute path gives the same; a missing folder says which
    again = cls().load(folder=os.path.join(input_dir, "sheets"), filename_prefix="out/")
    assert again[2] == names and again[3] == ["out/hero_2", "out/hero_10"]
    with pytest.raises(pack.zrealism_core.errors.InputError, match="folder not found"):
        cls().load(folder="nowhere")


def test_node_reruns_when_the_folder_changes(pack, comfy_fakes, tmp_path):
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_LoadImageFolder"]
    sheet(tmp_path)
    first = cls.IS_CHANGED(folder=str(tmp_path))
    assert first == cls.IS_CHANGED(folder=str(tmp_path))
    write_png(tmp_path / "hero_11.png", 8, 8)
    assert cls.IS_CHANGED(folder=str(tmp_path)) != first
    assert cls.IS_CHANGED(folder=str(tmp_path), limit=2) != cls.IS_CHANGED(folder=str(tmp_path))
    assert cls.IS_CHANGED(folder=str(tmp_path / "gone")).startswith("error: folder not found")


# ---------------------------------------------------------------- the list through the graph

SAMPLE = dict(prompt="photo", negative="drawing", seed=3, steps=2, cfg=1.0, denoise=1.0, depth_scale=0.7,
              pose_scale=0.7, depth_start=0.0, depth_end=1.0, pose_start=0.0, pose_end=1.0,
              scheduler="euler", color_lock=0.0)


def test_the_list_goes_through_prep_sampler_evaluator_and_fuse(pack, comfy_fakes, tiny_pipe, tmp_path):
    nodes = pack.nodes.NODE_CLASS_MAPPINGS
    sheet(tmp_path)
    (images, masks, names, prefixes, _, _), _ = run_node(
        nodes["ZRealism_LoadImageFolder"](), widgets(folder=str(tmp_path), pattern="*", limit=0, filename_prefix="ZRealism/"))
    (prepped, prep_masks), _ = run_node(nodes["ZRealism_WhiteBackgroundPrep"](), {
        "image": images, "mask": masks, **widgets(tolerance=12.0, grabcut=False, feather=0.0, grow=0, long_side=0,
                                                  mask_is_background=True)})
    assert [tuple(t.shape) for t in prepped] == [(1, 24, 32, 3), (1, 40, 16, 3)]
    maps = torch.from_numpy(np.random.RandomState(5).rand(1, 24, 24, 3).astype(np.float32))  # one for all: resized
    sampler = nodes["ZRealism_DualControlNetSampler"]()
    (results, depths, _, reports), _ = run_node(sampler, {
        "pipe": [tiny_pipe], "image": prepped, "mask": prep_masks, "depth_map": [maps], "pose_map": [maps], **widgets(**SAMPLE)})
    # one call per image: each result keeps its image's size, and is what that image alone gives
    assert [tuple(t.shape) for t in results] == [(1, 24, 32, 3), (1, 40, 16, 3)]
    assert [tuple(t.shape) for t in depths] == [(1, 24, 32, 3), (1, 40, 16, 3)]
    alone = sampler.sample(tiny_pipe, prepped[1], mask=prep_masks[1], depth_map=maps, pose_map=maps, **SAMPLE)[0]
    assert torch.equal(results[1], alone)
    assert len(reports) == 2 and all(isinstance(r, str) for r in reports)

    evaluator = nodes["ZRealism_FidelityEvaluator"]()
    outputs, uis = run_node(evaluator, {"source": prepped, "result": results, "mask": prep_masks})
    overall, report_json, panels = outputs[0], outputs[-2], outputs[-1]
    assert len(overall) == 2 and all(0.0 <= v <= 1.0 for v in overall)
    assert len(report_json) == 2 and len(uis) == 2 and len(panels) == 2

    motion_file = comfy_fakes.models / "animatediff_models" / "mm_tiny.safetensors"
    write_tiny_motion_adapter(motion_file, max_seq_length=8)
    motion = nodes["ZRealism_MotionModelLoader"]().load("mm_tiny.safetensors")[0]
    fuse_args = dict(prompt="a photo", negative="", frames=2, fps=8.0, strength=1.0, seed=0, steps=1, cfg=1.0,
                     loop="off", color_lock=1.0, depth_scale=0.7, pose_scale=0.7, control_end=1.0)
    (clips, fps, _), _ = run_node(nodes["ZRealism_AnimateDiffFuse"](), {
        "pipe": [tiny_pipe], "motion": [motion], "still": results, "depth_map": depths, "pose_map": [maps],
        **widgets(**fuse_args)})
    assert [tuple(t.shape) for t in clips] == [(2, 24, 32, 3), (2, 40, 16, 3)] and fps == [8.0, 8.0]

    # the saved files follow the sources: Save Video gets the prefix list beside the clips
    (paths,), _ = run_node(nodes["ZRealism_SaveVideo"](), {"frames": clips, "filename_prefix": prefixes,
                                                           **widgets(fps=8.0, format="gif")})
    assert [os.path.basename(p).split("_000")[0] for p in paths] == ["hero_2", "hero_10"]
    assert all(os.path.dirname(p).endswith("ZRealism") for p in paths)
