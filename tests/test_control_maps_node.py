"""ZRealism_ControlMaps: the detectors as a node, through the same core function as the sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_pipe  # noqa: F401 (fixtures)
from zrealism_core.control.maps import prepare_maps
from zrealism_core.engine import transform
from zrealism_core.testing.tiny_annotators import write_openpose_files, write_tiny_depth_anything


def _figure(h=48, w=64):
    img = np.ones((h, w, 3), np.float32)
    img[8:40, 20:44] = rand_image(32, 24, 3)
    return img


@pytest.fixture
def node(pack, comfy_fakes, monkeypatch):
    ann = comfy_fakes.models / "zrealism_annotators"
    write_tiny_depth_anything(ann)
    write_openpose_files(ann / "lllyasviel" / "Annotators")
    mod = pack.nodes.control_maps
    monkeypatch.setattr(mod, "_store", None)  # a fresh detector store under these fakes
    return mod.ZRealism_ControlMaps(), [str(ann)]


def test_contract(pack):
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_ControlMaps"]
    spec = cls.INPUT_TYPES()
    assert list(spec["required"]) == ["image", "depth_method", "detect_resolution"] and list(spec["optional"]) == ["mask"]
    assert cls.RETURN_NAMES == ("depth_map", "pose_map") and cls.RETURN_TYPES == ("IMAGE", "IMAGE")
    assert all("tooltip" in opts for group in spec.values() for _, opts in group.values())


def test_maps_match_the_core_and_the_sampler(node, tiny_pipe):
    n, dirs = node
    img = _figure()
    mask = np.zeros(img.shape[:2], np.float32)
    mask[8:40, 20:44] = 1.0
    depth, pose = n.detect(torch.from_numpy(np.stack([img, img[::-1].copy()])), "depth_anything", 256,
                           mask=torch.from_numpy(mask[None]))
    assert tuple(depth.shape) == tuple(pose.shape) == (2, 48, 64, 3)
    want = prepare_maps(img, method="depth_anything", annotator_dirs=dirs, resolution=256, mask=mask)
    assert np.array_equal(depth[0].numpy(), want.depth) and np.array_equal(pose[0].numpy(), want.pose)
    assert not np.array_equal(depth[0].numpy(), depth[1].numpy())  # one map per image
    # the sampler's own detection (no maps connected) gives the same depth map for the same picture
    r = transform(tiny_pipe, img, steps=2, denoise=0.5, depth_method="depth_anything", annotator_dirs=dirs,
                  detect_resolution=256, pose_map=pose[0].numpy())
    assert np.array_equal(r.depth_map, depth[0].numpy())


def test_mask_batch_must_fit(node):
    n, _ = node
    img = torch.from_numpy(np.stack([_figure()] * 3))
    with pytest.raises(Exception, match="mask"):
        n.detect(img, "depth_anything", 256, mask=torch.ones(2, 48, 64))
