"""Random-weight annotator files for tests, `zrealism selftest` and benchmarks (no download).

- write_tiny_depth_anything(root): a real transformers Depth Anything folder with a very small
  Dinov2 backbone (~0.3 M parameters, ~1 MB), laid out like the Hugging Face repo
  (root/Depth-Anything-V2-Small-hf/{config.json, model.safetensors, preprocessor_config.json}).
  write_tiny_depth_anything_original(root) saves the same model in the original repo's layout
  (depth_anything_v2_vits.pth, as comfyui_controlnet_aux keeps it); write_depth_anything_v2_small(root)
  writes the real V2 Small architecture (24.8 M parameters, ~99 MB) with random weights, for timings.
- write_openpose_files(root): the three OpenPose files controlnet-aux's loader expects. The loader
  builds the real architectures (body 52 M, hand 37 M, face 38 M parameters) and has no smaller
  option, so the files have the real shapes. compact=True (default) stores every weight as one
  random value per output channel, broadcast to the full shape (a stride-0 view: torch.save keeps
  only the small storage), so the three files take ~0.4 MB instead of ~485 MB and load through
  the very same code path (torch.load(weights_only=True) + load_state_dict copies the broadcast
  values into full tensors). compact=False writes full random tensors, as large as the real files.
- write_midas_file(root): dpt_hybrid-midas-501f0c75.pt with the real DPT-Hybrid architecture
  (compact or full, as above). Loading and running it is slow on CPU (~10 s + ~16 s per 512²), so
  unit tests do not use it.

The weights are random: Depth Anything gives a depth-like but meaningless map, OpenPose finds
nobody (a black pose map). That is enough to test loading, file layouts, sizes and timings.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Union

from ..models import annotators

PathLike = Union[str, Path]


def write_tiny_depth_anything(root: PathLike, *, subfolder: str = annotators.DEPTH_ANYTHING_FOLDER, seed: int = 0,
                              with_processor: bool = True) -> Path:
    """Write a tiny random Depth Anything (transformers layout) to root/subfolder; returns that folder."""
    folder = Path(root) / subfolder if subfolder else Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    _tiny_depth_anything(seed).save_pretrained(str(folder), safe_serialization=True)
    if with_processor:
        _v2_processor().save_pretrained(str(folder))
    return folder


def _tiny_depth_anything(seed: int):
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    # hidden 64 with 1 head: the head count of an original-layout file is read as hidden // 64.
    # initializer_range 0.1 (not 0.02): with the default the signal dies out in the random layers
    # and the "map" is a constant plus float noise (spread ~1e-7); at 0.1 it varies with the image.
    backbone = Dinov2Config(
        image_size=518, patch_size=14, hidden_size=64, num_hidden_layers=4, num_attention_heads=1, mlp_ratio=2,
        out_indices=[1, 2, 3, 4], reshape_hidden_states=False, initializer_range=0.1,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=64, neck_hidden_sizes=[8, 16, 16, 32],
        fusion_hidden_size=16, head_hidden_size=8, initializer_range=0.1,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).train(False)
    with torch.no_grad():
        # The relative head ends in a ReLU; a small positive last bias keeps most pixels above zero.
        model.head.conv3.bias.fill_(0.02)
    return model


def write_tiny_depth_anything_original(root: PathLike, *, seed: int = 0) -> Path:
    """The same tiny model as write_tiny_depth_anything, saved in the original repo's layout
    (root/depth_anything_v2_vits.pth, fused qkv), as comfyui_controlnet_aux keeps it."""
    import torch

    from ..models.depth_anything import depth_anything_key_map, rename_for_model

    model = _tiny_depth_anything(seed)
    hf = rename_for_model(model.state_dict(), None, reverse=True)  # hub-style names, whatever transformers' version
    layers = model.config.backbone_config.num_hidden_layers
    original = {src: hf[dst].clone() for src, dst in depth_anything_key_map(layers) if dst in hf}
    for i in range(layers):
        pre = f"backbone.encoder.layer.{i}.attention.attention"
        for kind in ("weight", "bias"):
            original[f"pretrained.blocks.{i}.attn.qkv.{kind}"] = torch.cat(
                [hf[f"{pre}.{n}.{kind}"] for n in ("query", "key", "value")], dim=0)
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / annotators.DEPTH_ANYTHING_ORIGINAL.name
    torch.save(original, path)
    return path


def write_depth_anything_v2_small(root: PathLike, *, subfolder: str = annotators.DEPTH_ANYTHING_FOLDER, seed: int = 0) -> Path:
    """Depth Anything V2 Small's real architecture (24.8 M parameters, ~99 MB) with random weights,
    in the -hf repo's layout: for load/detection timings without downloading the real file."""
    import torch
    from transformers import DepthAnythingForDepthEstimation

    from ..models.depth_anything import depth_anything_v2_small_config

    folder = Path(root) / subfolder if subfolder else Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    DepthAnythingForDepthEstimation(depth_anything_v2_small_config()).train(False).save_pretrained(str(folder), safe_serialization=True)
    _v2_processor().save_pretrained(str(folder))
    return folder


def _v2_processor():
    from transformers import DPTImageProcessor

    from ..models.depth_anything import PROCESSOR_DEFAULTS

    return DPTImageProcessor(**PROCESSOR_DEFAULTS)


def _random_state_dict(state: Dict[str, "torch.Tensor"], seed: int, compact: bool) -> Dict[str, "torch.Tensor"]:  # noqa: F821
    import torch

    g = torch.Generator().manual_seed(seed)  # compact values; full files keep the (seeded) default init
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()  # e.g. num_batches_tracked
            continue
        if compact and value.dim() > 0:
            base = torch.randn((value.shape[0],) + (1,) * (value.dim() - 1), generator=g) * 0.05
            tensor = base.expand(value.shape)  # stride-0 view: only value.shape[0] numbers are saved
        else:
            # PyTorch's default init, as the feasibility study's timings used. (Plain N(0, 0.05)
            # weights make OpenPose report thousands of spurious peaks and its Python matching
            # loop then takes a minute: not a cost real weights have.)
            tensor = value.detach().clone()
        if compact and key.endswith("running_var"):
            tensor = tensor.abs() + 1.0  # a variance must be positive
        out[key] = tensor
    return out


def write_openpose_files(root: PathLike, *, seed: int = 0, compact: bool = True) -> Dict[str, Path]:
    """Write body_pose_model.pth, hand_pose_model.pth and facenet.pth (real shapes, random values) into root."""
    import torch
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, net, strip in (
        ("body_pose_model.pth", bodypose_model, True),
        ("hand_pose_model.pth", handpose_model, True),
        ("facenet.pth", FaceNet, False),
    ):
        torch.manual_seed(seed)
        state = net().state_dict()
        if strip:
            # controlnet-aux's util.transfer reads `model0.conv1_1.weight` from key `conv1_1.weight`.
            state = {".".join(k.split(".")[1:]): v for k, v in state.items()}
        paths[name] = folder / name
        torch.save(_random_state_dict(state, seed, compact), paths[name])
        seed += 1
    return paths


def write_midas_file(root: PathLike, *, seed: int = 0, compact: bool = True) -> Path:
    """Write dpt_hybrid-midas-501f0c75.pt (real DPT-Hybrid shapes, random values) into root."""
    import torch
    from controlnet_aux.midas.midas.dpt_depth import DPTDepthModel

    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    state = DPTDepthModel(path=None, backbone="vitb_rn50_384", non_negative=True).state_dict()
    path = folder / annotators.MIDAS_FILE.name
    torch.save(_random_state_dict(state, seed, compact), path)
    return path


def describe(root: PathLike) -> str:
    """Sizes of the annotator files under root (for logs)."""
    rows = []
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            rows.append(f"{p.relative_to(root)}  {p.stat().st_size / 1e6:.2f} MB")
    return json.dumps(rows, indent=1)


class SilhouetteBody:
    """Stands in for a loaded OpenPose Body estimator (random weights find nobody): reports one person
    whose keypoints come from the picture itself, so tests can check where a skeleton lands.

    In the detection image (BGR uint8, as controlnet-aux passes it) the character is every pixel
    darker than near-white. Keypoints (OpenPose COCO-18 ids): 0 nose = top-most pixel's column at
    12% of the height, 1 neck = the centroid's column at 25%, 2 right shoulder / 5 left shoulder =
    the left-most / right-most character column at 30%, 8 right hip / 11 left hip = the centroid
    -/+ an eighth of the width at 60%, 10 right ankle = bottom-most pixel; each then moved to the
    nearest character pixel. A mirrored picture mirrors them, so left/right swap."""

    PARTS = (0, 1, 2, 5, 8, 11, 10)

    def __init__(self, real):
        self.real = real
        self.calls = []  # the detection images' shapes

    def __call__(self, image):
        import numpy as np

        self.calls.append(image.shape)
        ink = image.min(axis=2) < 235
        if not ink.any():
            return np.zeros((0, 4)), np.zeros((0, 20))
        ys, xs = np.nonzero(ink)
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        cx = float(xs.mean())
        hgt, wid = float(y1 - y0), float(x1 - x0)

        def at(frac):  # the character's columns at height fraction `frac`
            row = ink[int(y0 + frac * hgt)]
            cols = np.nonzero(row)[0]
            return cols if cols.size else np.array([cx])

        top_x = float(xs[ys == y0].mean())
        bottom_x = float(xs[ys == y1].mean())
        sh = at(0.3)
        points = {
            0: (top_x, y0 + 0.12 * hgt), 1: (cx, y0 + 0.25 * hgt), 2: (float(sh.min()), y0 + 0.3 * hgt),
            5: (float(sh.max()), y0 + 0.3 * hgt), 8: (cx - 0.25 * wid * 0.5, y0 + 0.6 * hgt),
            11: (cx + 0.25 * wid * 0.5, y0 + 0.6 * hgt), 10: (bottom_x, float(y1)),
        }
        for part, (x, y) in points.items():  # on the character: the nearest character pixel
            k = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
            points[part] = (float(xs[k]), float(ys[k]))
        candidate = np.array([[x, y, 1.0, i] for i, (x, y) in enumerate(points.values())])
        person = -np.ones(20)
        for i, part in enumerate(points):
            person[part] = i
        person[18], person[19] = len(points), len(points)
        return candidate, person[None]

    def format_body_result(self, candidate, subset):
        return self.real.format_body_result(candidate, subset)
