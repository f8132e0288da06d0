"""Control maps: file location, Depth Anything / MiDaS / OpenPose detection, errors.

Depth Anything runs for real on a tiny random-weight transformers folder. OpenPose runs for real
through controlnet-aux's loader on files with the real architecture whose weights are stored
compactly (one value per output channel, ~0.4 MB for the three files; see tiny_annotators); with
random weights it finds nobody, so one test swaps the loaded detector's body network for a stub
that reports one known person, to check where the skeleton lands in the map of the input's size.
MiDaS's real architecture costs ~25 s on CPU, so its tests stub the detector object and check our
plumbing (file found, resized back, normalised, near = bright kept).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from zrealism_core.control import maps as control_maps

from zrealism_core.models import annotators, depth_anything, detectors
from zrealism_core.errors import InputError, ModelFileError
from zrealism_core.testing.tiny_annotators import write_openpose_files, write_tiny_depth_anything


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(annotators.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def da_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("da")
    write_tiny_depth_anything(root, seed=0)
    return root


@pytest.fixture(scope="module")
def da_root_other(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("da_other")
    write_tiny_depth_anything(root, seed=1)
    return root


@pytest.fixture(scope="module")
def aux_ckpts(tmp_path_factory) -> Path:
    """comfyui_controlnet_aux's layout: custom_nodes/comfyui_controlnet_aux/ckpts/<hf repo id>/<file>."""
    ckpts = tmp_path_factory.mktemp("custom_nodes") / "comfyui_controlnet_aux" / "ckpts"
    write_openpose_files(ckpts / "lllyasviel" / "Annotators")
    return ckpts


def _image(h: int = 70, w: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    img[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = rng.integers(0, 255, (3 * h // 4 - h // 4, 2 * w // 3 - w // 3, 3))
    return img


# ---------------------------------------------------------------- depth anything (real, tiny)

def test_depth_anything_map_size_range_channels_and_determinism(da_root):
    detectors.unload_detectors()
    img = _image(70, 100)
    first = control_maps.depth_map(img, method="depth_anything", annotator_dirs=[da_root], resolution=64)
    assert first.shape == (70, 100, 3) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert first.min() == 0.0 and first.max() == 1.0  # normalised to the full range
    assert np.array_equal(first[..., 0], first[..., 1]) and np.array_equal(first[..., 0], first[..., 2])
    assert first.std() > 0.05  # varies across the image (the tiny model's raw spread is ~10%, not float noise)
    other = control_maps.depth_map(_image(70, 100, seed=1), method="depth_anything", annotator_dirs=[da_root], resolution=64)
    assert np.abs(other - first).mean() > 0.01  # the map follows the picture
    again = control_maps.depth_map(img, method="depth_anything", annotator_dirs=[da_root], resolution=64)
    assert np.array_equal(first, again)
    assert detectors.unload_detectors() == 1  # cached once, not reloaded per call
    reloaded = control_maps.depth_map(img, method="depth_anything", annotator_dirs=[da_root], resolution=64)
    assert np.array_equal(first, reloaded)


def test_depth_accepts_pil_rgba_and_other_sizes(da_root):
    from PIL import Image

    rgba = np.zeros((33, 47, 4), np.uint8)
    rgba[5:25, 10:30] = (200, 40, 40, 255)
    out = control_maps.depth_map(Image.fromarray(rgba, "RGBA"), annotator_dirs=[da_root], resolution=64)
    assert out.shape == (33, 47, 3)
    tall = control_maps.depth_map(_image(120, 50).astype(np.float32) / 255.0, annotator_dirs=[da_root], resolution=64)
    assert tall.shape == (120, 50, 3)


def test_depth_resolution_changes_the_detection(da_root):
    img = _image(64, 64)
    low = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=64)
    high = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=128)
    assert low.shape == high.shape == (64, 64, 3)
    assert not np.array_equal(low, high)


def test_depth_anything_without_preprocessor_config_uses_v2_defaults(tmp_path):
    folder = write_tiny_depth_anything(tmp_path, with_processor=False)
    assert not (folder / "preprocessor_config.json").exists()
    out = control_maps.depth_map(_image(), annotator_dirs=[tmp_path], resolution=64)
    assert out.shape == (70, 100, 3)


# ---------------------------------------------------------------- method selection

class _FakeMidas:
    """Stands in for controlnet-aux's MidasDetector object (its real network costs ~25 s on CPU).

    Returns what MidasDetector returns: a uint8 H,W,3 map at controlnet-aux's detection size
    (short side = resolution, sides rounded to 64), bright at the top (near).
    """

    def __init__(self):
        self.calls = []

    def __call__(self, image, detect_resolution, image_resolution, output_type):
        from controlnet_aux.util import resize_image

        self.calls.append((image.shape, image.dtype, detect_resolution, output_type))
        h, w = resize_image(image, image_resolution).shape[:2]
        ramp = np.linspace(255, 0, h).astype(np.uint8)
        return np.repeat(np.repeat(ramp[:, None, None], w, axis=1), 3, axis=2)


def _midas_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / annotators.MIDAS_FILE.name).write_bytes(b"placeholder: the detector object is stubbed")
    return root


def test_auto_uses_midas_when_only_midas_is_present(tmp_path, monkeypatch):
    fake = _FakeMidas()
    loaded = []
    monkeypatch.setattr(detectors, "load_midas", lambda path, device: loaded.append(path) or fake)
    midas = _midas_dir(tmp_path / "m" / "lllyasviel" / "Annotators")
    img = _image(70, 100)
    out = control_maps.depth_map(img, method="auto", annotator_dirs=[tmp_path / "m"], resolution=64)
    assert loaded == [midas / annotators.MIDAS_FILE.name]
    assert fake.calls == [((70, 100, 3), np.uint8, 64, "np")]
    assert out.shape == (70, 100, 3) and out.dtype == np.float32
    assert out.max() == 1.0 and out.min() == 0.0
    assert out[0].mean() > out[-1].mean()  # near = bright survives the resize and normalisation
    assert control_maps.available_depth_method([tmp_path / "m"]) == "midas"
    detectors.unload_detectors()


def test_auto_prefers_depth_anything_over_midas(da_root, tmp_path, monkeypatch):
    def refuse(path, device):
        raise AssertionError("MiDaS must not load when Depth Anything is present")

    monkeypatch.setattr(detectors, "load_midas", refuse)
    midas = _midas_dir(tmp_path / "first")  # MiDaS in the FIRST folder still loses to Depth Anything
    assert annotators.locate_depth("auto", [midas, da_root])[0] == "depth_anything"
    out = control_maps.depth_map(_image(), method="auto", annotator_dirs=[midas, da_root], resolution=64)
    assert out.shape == (70, 100, 3)
    assert control_maps.available_depth_method([midas, da_root]) == "depth_anything"


def test_explicit_midas_is_used_even_when_depth_anything_is_present(da_root, tmp_path, monkeypatch):
    fake = _FakeMidas()
    monkeypatch.setattr(detectors, "load_midas", lambda path, device: fake)
    midas = _midas_dir(tmp_path / "m")
    control_maps.depth_map(_image(), method="midas", annotator_dirs=[da_root, midas], resolution=64)
    assert len(fake.calls) == 1
    detectors.unload_detectors()


# ---------------------------------------------------------------- missing files

def test_missing_depth_files_name_every_file_folder_and_source(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    absent = tmp_path / "absent"
    with pytest.raises(ModelFileError) as info:
        control_maps.depth_map(_image(), annotator_dirs=[empty, absent])
    msg = str(info.value)
    for name in ("config.json", "model.safetensors", "dpt_hybrid-midas-501f0c75.pt"):
        assert name in msg
    assert str(empty) in msg and str(absent) in msg and "does not exist" in msg
    assert "depth-anything/Depth-Anything-V2-Small-hf" in msg and "lllyasviel/Annotators" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_missing_midas_when_asked_for_midas(da_root):
    with pytest.raises(ModelFileError) as info:
        control_maps.depth_map(_image(), method="midas", annotator_dirs=[da_root])
    msg = str(info.value)
    assert "dpt_hybrid-midas-501f0c75.pt" in msg and str(da_root) in msg
    assert "model.safetensors" not in msg  # only what this method needs


def test_missing_pose_files_names_only_the_missing_ones(tmp_path):
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "body_pose_model.pth").write_bytes(b"x")
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=[folder], include_hand=True, include_face=True)
    msg = str(info.value)
    assert "hand_pose_model.pth" in msg and "facenet.pth" in msg
    assert "body_pose_model.pth (" not in msg  # found, so not listed as missing
    assert str(folder) in msg and "lllyasviel/Annotators" in msg


def test_body_only_pose_asks_only_for_the_body_model(tmp_path):
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=[tmp_path])
    msg = str(info.value)
    assert "body_pose_model.pth (" in msg
    assert "hand_pose_model.pth" not in msg and "facenet.pth" not in msg
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=[tmp_path], include_face=True)
    assert "facenet.pth" in str(info.value) and "hand_pose_model.pth" not in str(info.value)


def test_body_only_pose_loads_without_the_hand_and_face_files(tmp_path):
    paths = write_openpose_files(tmp_path)
    paths["hand_pose_model.pth"].unlink()
    paths["facenet.pth"].unlink()
    detectors.unload_detectors()
    out = control_maps.pose_map(_image(70, 100), annotator_dirs=[tmp_path], resolution=64)
    assert out.shape == (70, 100, 3)
    (detector,) = [d for k, d in detectors._cache.items() if k[0] == "openpose"]
    assert detector.hand_estimation is None and detector.face_estimation is None
    detectors.unload_detectors()


def test_no_folders_at_all_says_where_to_put_files():
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=None)
    assert "zrealism_annotators" in str(info.value) and annotators.ENV_VAR in str(info.value)


def test_a_depth_anything_folder_of_another_model_type_is_not_taken(tmp_path):
    other = tmp_path / "some-other-model"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "dpt"}')
    (other / "model.safetensors").write_bytes(b"")
    assert annotators.find_depth_anything(annotators.search_dirs([tmp_path])) is None


def test_corrupt_depth_anything_weights_give_a_model_file_error(tmp_path):
    folder = write_tiny_depth_anything(tmp_path)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError) as info:
        control_maps.depth_map(_image(), annotator_dirs=[tmp_path], resolution=64)
    assert str(folder) in str(info.value)


def test_corrupt_openpose_file_gives_a_model_file_error(tmp_path):
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        (tmp_path / name).write_bytes(b"garbage, not a torch file")
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=[tmp_path])
    assert "body_pose_model.pth" in str(info.value)
    with pytest.raises(ModelFileError) as info:
        control_maps.pose_map(_image(), annotator_dirs=[tmp_path], include_hand=True)
    assert "hand_pose_model.pth" in str(info.value)


def test_bad_arguments():
    with pytest.raises(InputError):
        control_maps.depth_map(_image(), method="zoe", annotator_dirs=[])
    with pytest.raises(InputError):
        control_maps.depth_map(_image(), annotator_dirs=[], resolution=8)
    with pytest.raises(InputError):
        control_maps.pose_map(_image(), annotator_dirs=[], device="not-a-device")


# ---------------------------------------------------------------- search order and layouts

def test_caller_folder_order_is_respected(da_root, da_root_other):
    img = _image()
    a = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=64)
    b = control_maps.depth_map(img, annotator_dirs=[da_root_other], resolution=64)
    assert not np.array_equal(a, b)  # different weights, different maps
    assert np.array_equal(control_maps.depth_map(img, annotator_dirs=[da_root, da_root_other], resolution=64), a)
    assert np.array_equal(control_maps.depth_map(img, annotator_dirs=[da_root_other, da_root], resolution=64), b)


def test_env_folders_come_after_the_callers(tmp_path, monkeypatch):
    first, second, env1, env2 = (tmp_path / n for n in ("first", "second", "env1", "env2"))
    monkeypatch.setenv(annotators.ENV_VAR, os.pathsep.join([str(env1), str(env2), str(first)]))
    assert annotators.search_dirs([first, second]) == [first, second, env1, env2]
    for folder in (second, env1):
        _midas_dir(folder)
    assert annotators.find_midas(annotators.search_dirs([first, second])) == second / annotators.MIDAS_FILE.name
    assert annotators.find_midas(annotators.search_dirs(None)) == env1 / annotators.MIDAS_FILE.name


def test_comfyui_controlnet_aux_ckpts_layout_is_found(aux_ckpts, da_root, tmp_path):
    files = annotators.locate_openpose([aux_ckpts])
    assert files["body_pose_model.pth"] == aux_ckpts / "lllyasviel" / "Annotators" / "body_pose_model.pth"
    # Depth Anything saved like a Hugging Face cache snapshot, four levels down.
    snapshot = tmp_path / "hub" / "models--depth-anything--Depth-Anything-V2-Small-hf" / "snapshots" / "abc123"
    write_tiny_depth_anything(snapshot, subfolder="")
    assert annotators.locate_depth("auto", [tmp_path / "hub"]) == ("depth_anything", snapshot)


def test_search_depth_is_bounded(tmp_path):
    deep = tmp_path.joinpath(*["d"] * (annotators.MAX_DEPTH + 1))
    _midas_dir(deep)
    assert annotators.find_midas([tmp_path]) is None
    assert annotators.find_midas([tmp_path / "d"]) == deep / annotators.MIDAS_FILE.name


def test_openpose_files_are_taken_from_the_first_folder_that_has_each(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, names in ((a, ("body_pose_model.pth",)), (b, ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"))):
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"x")
    files = annotators.locate_openpose([a, b], include_hand=True, include_face=True)
    assert files["body_pose_model.pth"] == a / "body_pose_model.pth"
    assert files["hand_pose_model.pth"] == b / "hand_pose_model.pth"
    assert annotators.locate_openpose([b, a])["body_pose_model.pth"] == b / "body_pose_model.pth"
    assert set(annotators.locate_openpose([a, b])) == {"body_pose_model.pth"}  # body only: nothing else asked for


# ---------------------------------------------------------------- OpenPose (real loader and architecture)

def test_pose_map_real_openpose_gives_input_size_and_black_for_nobody(aux_ckpts):
    detectors.unload_detectors()
    out = control_maps.pose_map(_image(70, 100), annotator_dirs=[aux_ckpts], resolution=64)
    assert out.shape == (70, 100, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out.max() == 0.0  # random weights find nobody: an empty (black) pose map


class _OnePersonBody:
    """Wraps the loaded Body estimator: the real network is skipped, one known person is reported.

    Keypoints are given as fractions of the detection image, so the test can check where they land
    in the map of the (differently shaped) input image.
    """

    # OpenPose COCO-18 order: 0 nose, 1 neck, 2 r-shoulder, 3 r-elbow, 5 l-shoulder, 6 l-elbow
    POINTS = {0: (0.5, 0.15), 1: (0.5, 0.3), 2: (0.35, 0.3), 3: (0.3, 0.5), 5: (0.65, 0.3), 6: (0.7, 0.5)}

    def __init__(self, real):
        self.real = real

    def __call__(self, image):
        h, w = image.shape[:2]
        candidate = np.array([[x * w, y * h, 1.0, i] for i, (x, y) in enumerate(self.POINTS.values())])
        person = -np.ones(20)
        for i, part in enumerate(self.POINTS):
            person[part] = i
        person[18], person[19] = len(self.POINTS), len(self.POINTS)
        return candidate, person[None]

    def format_body_result(self, candidate, subset):
        return self.real.format_body_result(candidate, subset)


def test_pose_skeleton_lands_where_the_person_is_in_the_input_frame(aux_ckpts, monkeypatch):
    img = _image(60, 150)  # wide: controlnet-aux detects on a 64-multiple canvas of another aspect
    control_maps.pose_map(img, annotator_dirs=[aux_ckpts], resolution=64)  # loads + caches the detector
    (detector,) = [d for k, d in detectors._cache.items() if k[0] == "openpose"]
    monkeypatch.setattr(detector, "body_estimation", _OnePersonBody(detector.body_estimation))
    out = control_maps.pose_map(img, annotator_dirs=[aux_ckpts], resolution=64)
    assert out.shape == (60, 150, 3)
    lit = out.max(axis=2) > 0.2
    ys, xs = np.nonzero(lit)
    assert lit.sum() > 50
    # The drawn limbs span shoulders to elbows: x 0.3..0.7, y 0.15..0.5 of the frame (plus stroke width).
    assert 0.2 * 150 <= xs.min() and xs.max() <= 0.8 * 150
    assert ys.min() >= 0.05 * 60 and ys.max() <= 0.6 * 60
    neck = out[int(0.3 * 60), int(0.5 * 150)]
    assert neck.max() > 0.5  # the neck keypoint dot
    assert out[-5:, :].max() == 0.0 and out[:, :10].max() == 0.0  # nothing where the person is not
    detectors.unload_detectors()


# ---------------------------------------------------------------- Depth Anything, original layout (comfyui_controlnet_aux's file)

def test_original_layout_file_gives_the_same_map_as_the_transformers_folder(da_root, tmp_path):
    import torch

    from zrealism_core.testing.tiny_annotators import write_tiny_depth_anything_original

    aux = tmp_path / "ckpts" / "depth-anything" / "Depth-Anything-V2-Small"
    path = write_tiny_depth_anything_original(aux, seed=0)  # same weights as da_root (seed 0)
    keys = set(torch.load(path, weights_only=True))
    # The original repo's names (DINOv2 `pretrained.*` with fused qkv, DPT `depth_head.*`).
    for key in ("pretrained.blocks.0.attn.qkv.weight", "pretrained.pos_embed", "depth_head.scratch.refinenet4.out_conv.weight",
                "depth_head.scratch.output_conv2.2.bias", "depth_head.resize_layers.3.weight"):
        assert key in keys
    assert not any(k.startswith(("backbone.", "neck.", "head.")) for k in keys)
    assert annotators.locate_depth("auto", [tmp_path / "ckpts"]) == ("depth_anything", path)
    img = _image()
    from_original = control_maps.depth_map(img, annotator_dirs=[tmp_path / "ckpts"], resolution=64)
    from_folder = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=64)
    np.testing.assert_allclose(from_original, from_folder, atol=1e-5)


def test_damaged_original_layout_file_gives_a_model_file_error(tmp_path):
    import torch

    torch.save({"pretrained.cls_token": torch.zeros(1, 1, 64)}, tmp_path / annotators.DEPTH_ANYTHING_ORIGINAL.name)
    with pytest.raises(ModelFileError) as info:
        control_maps.depth_map(_image(), annotator_dirs=[tmp_path], resolution=64)
    assert annotators.DEPTH_ANYTHING_ORIGINAL.name in str(info.value)


def test_depth_and_pose_on_cuda_match_the_cpu_maps(da_root, aux_ckpts):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none here)")
    img = _image()
    cpu = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=64)
    gpu = control_maps.depth_map(img, annotator_dirs=[da_root], resolution=64, device="cuda")
    assert gpu.shape == cpu.shape
    np.testing.assert_allclose(gpu, cpu, atol=2e-2)  # TF32/cuDNN kernels differ slightly
    assert control_maps.pose_map(img, annotator_dirs=[aux_ckpts], resolution=64, device="cuda").shape == (70, 100, 3)
    assert {k[2] for k in detectors._cache} >= {"cpu", "cuda"}  # cached per device
    detectors.unload_detectors()


# ------------------------------------------------------------------ prepare_maps (still and clip)

def test_prepare_maps_resizes_given_maps_and_detects_only_what_is_needed(monkeypatch):
    from zrealism_core.imaging.images import resize_rgb

    image = np.full((40, 48, 3), 0.5, np.float32)
    calls = []

    def fake_depth(img, **kw):
        calls.append(("depth", img.shape, kw["method"], kw["resolution"]))
        return np.full((20, 24, 3), 0.25, np.float32)  # a detector answer of another size is resized too

    monkeypatch.setattr(control_maps, "depth_map", fake_depth)
    monkeypatch.setattr(control_maps, "pose_map", lambda img, **kw: calls.append(("pose",)) or np.zeros_like(img))
    pose = np.random.default_rng(0).random((17, 23, 3)).astype(np.float32)
    timings = {}
    maps = control_maps.prepare_maps(image, pose=pose, method="midas", resolution=256, timings=timings)
    assert calls == [("depth", (40, 48, 3), "midas", 256)]  # the given pose map is not detected
    assert maps.depth.shape == maps.pose.shape == (40, 48, 3)
    np.testing.assert_allclose(maps.depth, 0.25, atol=1 / 255)
    np.testing.assert_array_equal(maps.pose, resize_rgb(pose, 40, 48))
    assert set(timings) == {"depth map"}
    calls.clear()
    assert control_maps.prepare_maps(image, need_depth=False, need_pose=False) == (None, None)
    assert calls == []


def test_prepare_maps_checks_cancel_after_each_map(monkeypatch):
    from zrealism_core.errors import CancelledError

    monkeypatch.setattr(control_maps, "depth_map", lambda img, **kw: np.zeros_like(img))
    monkeypatch.setattr(control_maps, "pose_map", lambda img, **kw: pytest.fail("pose detected after a cancel"))
    with pytest.raises(CancelledError):
        control_maps.prepare_maps(np.zeros((8, 8, 3), np.float32), cancel=lambda: True)



# ---------------------------------------------------------------- Depth Anything key table (an independent oracle)

DA_KEY_TABLE = Path(__file__).parent / "data" / "depth_anything_v2_vits_keys.tsv"


def _key_table():
    import re

    rows = []
    for line in DA_KEY_TABLE.read_text().splitlines():
        if line and not line.startswith("#"):
            src, dst = line.split("\t")
            m = re.fullmatch(r"(.+)\[(\d+):(\d+)\]", src)
            rows.append((m.group(1), (int(m.group(2)), int(m.group(3))), dst) if m else (src, None, dst))
    return rows


def test_converter_reproduces_the_vit_s_key_table():
    """The pairs of transformers' conversion script, written out by hand for ViT-S (12 blocks, hidden
    384): our converter must send each original tensor (or qkv slice) to that transformers name."""
    import torch

    rows = _key_table()
    assert len(rows) == 78
    state = {}
    for i in range(12):  # every block has a fused qkv; ViT-S's is (3 x 384, 384)
        state[f"pretrained.blocks.{i}.attn.qkv.weight"] = torch.arange(1152 * 384, dtype=torch.float32).reshape(1152, 384) + i
        state[f"pretrained.blocks.{i}.attn.qkv.bias"] = torch.arange(1152, dtype=torch.float32) + i
    for n, (src, rows_slice, _) in enumerate(rows):
        if rows_slice is None:
            state[src] = torch.full((2,), float(n))
    out = depth_anything._original_to_transformers(state, num_layers=12)
    for src, rows_slice, dst in rows:
        assert dst in out, f"{src} -> {dst} missing"
        want = state[src] if rows_slice is None else state[src][rows_slice[0]:rows_slice[1]]
        assert torch.equal(out[dst], want), f"{src} went to another name than {dst}"


def test_key_table_names_are_those_of_transformers_model():
    """Every transformers name in the table exists in transformers' own model (12 layers)."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=12, num_attention_heads=1, mlp_ratio=1,
                            out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[4, 4, 4, 4],
                                 fusion_hidden_size=4, head_hidden_size=4)
    with torch.device("meta"):
        model_keys = set(DepthAnythingForDepthEstimation(config).state_dict())
    names = {dst: None for _, _, dst in _key_table()}
    renamed = depth_anything.rename_for_model(names, model_keys)
    assert set(renamed) <= model_keys, sorted(set(renamed) - model_keys)
