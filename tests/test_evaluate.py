"""zrealism_core.evaluate / evaluate_video, the panel, the node and the CLI."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from zrealism_core import evaluate, evaluate_video
from zrealism_core.errors import InputError
from zrealism_core.imaging.images import load_image, save_image
from zrealism_core.evaluation.panel import render_panel
from zrealism_core.imaging.sample import pink_noise, sample_character

REFERENCE_SCORES = ("silhouette", "edge", "color", "palette")
SIZE = 192


@pytest.fixture(scope="module")
def drawing() -> np.ndarray:
    return sample_character(SIZE, (1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def character_mask(drawing) -> np.ndarray:
    return (sample_character(SIZE)[..., 3] > 0.5).astype(np.float32)


@pytest.fixture(scope="module")
def photoreal(drawing, character_mask) -> np.ndarray:
    """The drawing with photo-like texture and shading inside the character (a stand-in result)."""
    m = character_mask[..., None] > 0.5
    tex = 1.0 + 0.10 * pink_noise(SIZE, 0, 1.5)[..., None] + 0.02 * pink_noise(SIZE, 1, 0.8)[..., None]
    out = np.where(m, cv2.GaussianBlur(drawing, (0, 0), 0.7) * tex, drawing)
    return np.clip(out, 0, 1).astype(np.float32)


def assert_valid(report):
    for k, v in report.scores.items():
        assert isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0, (k, v)
    json.loads(report.to_json())  # always serialisable (no NaN)


# ---------------------------------------------------------------- known values

def test_identity_gives_one_for_every_reference_score(photoreal, character_mask):
    r = evaluate(photoreal, photoreal)
    assert_valid(r)
    for k in REFERENCE_SCORES:
        assert r.scores[k] == 1.0, (k, r.scores)
    r2 = evaluate(photoreal, photoreal, character_mask, result_mask=character_mask)
    assert all(r2.scores[k] == 1.0 for k in REFERENCE_SCORES)
    # Source mask given, result mask detected: only the anti-aliased rim can differ.
    r3 = evaluate(photoreal, photoreal, character_mask)
    assert r3.scores["silhouette"] > 0.95
    assert all(r3.scores[k] == 1.0 for k in ("edge", "color", "palette"))
    assert set(r.scores) >= {"overall", "silhouette", "edge", "color", "palette", "texture_realism"}


def test_same_inputs_same_numbers(drawing, photoreal):
    a = evaluate(drawing, photoreal).to_dict()
    b = evaluate(drawing, photoreal).to_dict()
    assert a == b
    clip = [np.roll(photoreal, t, axis=1) for t in range(3)]
    assert evaluate_video(drawing, clip).to_dict() == evaluate_video(drawing, clip).to_dict()


def test_rgba_source_uses_its_alpha_as_the_mask(photoreal):
    rgba = sample_character(SIZE)  # transparent background: alpha = exact character coverage
    r = evaluate(rgba, photoreal)
    assert_valid(r)
    assert r.diagnostics["mask"]["source_fraction"] == pytest.approx(float((rgba[..., 3] > 0.5).mean()))
    assert r.scores["silhouette"] > 0.95


def test_disjoint_characters_score_zero_silhouette():
    src = np.ones((SIZE, SIZE, 3), np.float32)
    res = np.ones((SIZE, SIZE, 3), np.float32)
    src[20:80, 20:80] = (0.8, 0.2, 0.2)
    res[110:170, 110:170] = (0.8, 0.2, 0.2)
    r = evaluate(src, res)
    assert r.scores["silhouette"] == 0.0
    assert r.diagnostics["silhouette"]["iou"] == 0.0
    assert r.scores["overall"] == 0.0  # a gating failure shows in the geometric mean
    assert any("do not overlap" in n for n in r.notes)


def test_k_pixel_shift_iou_is_analytic():
    src = np.ones((SIZE, SIZE, 3), np.float32)
    src[50:110, 50:110] = (0.2, 0.4, 0.8)
    for k in (2, 6, 12):
        r = evaluate(src, np.roll(src, k, axis=1))
        assert r.diagnostics["silhouette"]["iou"] == pytest.approx((60 - k) / (60 + k), abs=1e-9)


def test_overall_is_geometric_mean_of_gating(drawing, photoreal):
    r = evaluate(drawing, photoreal)
    gated = [r.scores[k] for k in r.gating]
    expected = math.exp(sum(math.log(v) for v in gated) / len(gated)) if min(gated) > 0 else 0.0
    assert r.scores["overall"] == pytest.approx(expected, abs=2e-6)
    assert "palette" not in r.gating


# ---------------------------------------------------------------- behaviour

def test_faithful_photoreal_result_scores_well(drawing, photoreal):
    r = evaluate(drawing, photoreal)
    assert r.scores["silhouette"] > 0.95 and r.scores["edge"] > 0.7 and r.scores["color"] > 0.8
    assert r.scores["texture_realism"] > evaluate(drawing, drawing).scores["texture_realism"]


def test_scores_fall_with_misalignment(drawing, photoreal):
    sil, edge = [], []
    for k in (0, 3, 8, 20):
        r = evaluate(drawing, np.roll(photoreal, k, axis=1))
        sil.append(r.scores["silhouette"])
        edge.append(r.scores["edge"])
    assert all(x > y for x, y in zip(sil, sil[1:])), sil
    assert all(x > y for x, y in zip(edge, edge[1:])), edge


def test_color_falls_with_hue_rotation(drawing, photoreal):
    from test_metrics import hue_rotate  # tests/ is on sys.path (rootdir-less test modules)

    reports = [evaluate(drawing, hue_rotate(photoreal, d) if d else photoreal) for d in (0, 10, 30, 90, 180)]
    de = [r.diagnostics["color"]["delta_e_mean"] for r in reports]
    scores = [r.scores["color"] for r in reports]
    assert all(x < y for x, y in zip(de, de[1:])), de
    assert all(x >= y for x, y in zip(scores, scores[1:])) and scores[0] > scores[2] > scores[4], scores


# ---------------------------------------------------------------- bad input

def test_different_size_is_resized_with_a_note(drawing, photoreal):
    big = cv2.resize(photoreal, (SIZE * 2, SIZE * 2), interpolation=cv2.INTER_LINEAR)
    r = evaluate(drawing, big)
    assert_valid(r)
    assert any("resized to the source size" in n for n in r.notes)
    assert r.scores["silhouette"] > 0.9
    wide = cv2.resize(photoreal, (SIZE * 2, SIZE))
    assert any("aspect ratio differs" in n for n in evaluate(drawing, wide).notes)


def test_grayscale_inputs_are_handled(drawing, photoreal):
    gray = (photoreal @ np.array([0.299, 0.587, 0.114], np.float32))
    r = evaluate(drawing, gray)
    assert_valid(r)
    assert any("grayscale" in n for n in r.notes)
    assert r.scores["color"] < evaluate(drawing, photoreal).scores["color"]
    r8 = evaluate((gray * 255).astype(np.uint8), (gray * 255).astype(np.uint8))  # H,W uint8
    assert all(r8.scores[k] == 1.0 for k in REFERENCE_SCORES)


def test_empty_mask_falls_back_to_detection(drawing, photoreal):
    r = evaluate(drawing, photoreal, np.zeros((SIZE, SIZE), np.float32))
    assert_valid(r)
    assert any("mask is empty" in n for n in r.notes)


def test_blank_and_backgroundless_images_do_not_crash():
    white = np.ones((64, 64, 3), np.float32)
    r = evaluate(white, white)
    assert_valid(r)
    assert any("entirely near-white" in n for n in r.notes)
    noise = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    r = evaluate(noise, noise)
    assert_valid(r)
    assert any("no white background" in n for n in r.notes)


def test_nan_and_garbage_raise_clear_errors(drawing):
    bad = drawing.copy()
    bad[3, 3, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        evaluate(drawing, bad)
    with pytest.raises(InputError, match="result is missing"):
        evaluate(drawing, None)
    with pytest.raises(InputError, match="no frames"):
        evaluate_video(drawing, [])


# ---------------------------------------------------------------- clips

def _clip(photoreal, n=4, gain=0.0):
    frames = []
    for t in range(n):
        f = np.roll(photoreal, t, axis=1) * (1.0 + gain * (1 if t % 2 else -1))
        frames.append(np.clip(f, 0, 1).astype(np.float32))
    return frames


def test_clip_has_per_frame_scores_and_temporal(drawing, photoreal):
    r = evaluate_video(drawing, _clip(photoreal))
    assert_valid(r)
    assert r.frames == 4 and len(r.per_frame) == 4
    assert "temporal" in r.scores and "temporal" in r.gating
    assert r.diagnostics["temporal"]["flow_preset"]
    assert r.per_frame[0]["silhouette"] > r.per_frame[3]["silhouette"]  # drifting character
    d = r.to_dict()
    assert d["per_frame"][2]["edge"] == r.per_frame[2]["edge"]


def test_temporal_falls_with_flicker(drawing, photoreal):
    scores = [evaluate_video(drawing, _clip(photoreal, gain=g)).scores["temporal"] for g in (0.0, 0.02, 0.08)]
    assert all(x > y for x, y in zip(scores, scores[1:])), scores


def test_one_frame_clip_is_clear(drawing, photoreal):
    r = evaluate_video(drawing, [photoreal])
    assert_valid(r)
    assert r.scores["temporal"] == 1.0 and "temporal" not in r.gating
    assert any("one-frame clip" in n for n in r.notes)
    assert r.scores["edge"] == evaluate(drawing, photoreal).scores["edge"]
    arr = np.stack(_clip(photoreal, 3))  # a [T,H,W,C] array works too
    assert evaluate_video(drawing, arr).frames == 3


# ---------------------------------------------------------------- panel

def test_panel_is_a_finite_rgb_picture(drawing, photoreal, tmp_path):
    r = evaluate(drawing, photoreal)
    panel = render_panel(drawing, photoreal, r, height=160)
    assert panel.ndim == 3 and panel.shape[2] == 3 and panel.dtype == np.float32
    assert panel.shape[0] > 160 and panel.shape[1] > 4 * 160
    assert np.isfinite(panel).all() and 0.0 <= panel.min() and panel.max() <= 1.0
    # The source tile is really the source (not a blank canvas).
    header = panel.shape[0] - 160
    tile = panel[header // 2 + 10 : header // 2 + 150, 6:166]
    assert tile.std() > 0.05
    save_image(panel, tmp_path / "panel.png")
    # A report without maps (e.g. rebuilt) still renders: maps are recomputed.
    r.artifacts.clear()
    assert render_panel(drawing, photoreal, r).shape[2] == 3


# ---------------------------------------------------------------- node

def _torch():
    return pytest.importorskip("torch")


def test_node_contract_and_outputs(pack, drawing, photoreal, character_mask):
    torch = _torch()
    from zrealism_pack.nodes import LOAD_ERRORS, NODE_CLASS_MAPPINGS

    assert not LOAD_ERRORS
    cls = NODE_CLASS_MAPPINGS["ZRealism_FidelityEvaluator"]
    assert cls.OUTPUT_NODE is True
    inputs = cls.INPUT_TYPES()
    for group in inputs.values():
        for spec in group.values():
            assert spec[1].get("tooltip")
    assert "1 = character" in inputs["optional"]["mask"][1]["tooltip"]
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)

    node = cls()
    out = node.evaluate(torch.from_numpy(drawing[None]), torch.from_numpy(photoreal[None]),
                        mask=torch.from_numpy(character_mask[None]))
    values = out["result"]
    names = cls.RETURN_NAMES
    scores = dict(zip(names[:7], values[:7]))
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in scores.values())
    assert scores["temporal"] == 1.0
    report = json.loads(values[names.index("report")])
    assert report["scores"]["edge"] == scores["edge"]
    panel = values[names.index("panel")]
    assert panel.ndim == 4 and panel.shape[0] == 1 and panel.shape[3] == 3
    assert json.loads(out["ui"]["text"][1])["scores"]["overall"] == scores["overall"]


def test_node_batch_is_a_clip(pack, drawing, photoreal):
    torch = _torch()
    from zrealism_pack.nodes import NODE_CLASS_MAPPINGS

    node = NODE_CLASS_MAPPINGS["ZRealism_FidelityEvaluator"]()
    frames = torch.from_numpy(np.stack(_clip(photoreal, 3)))
    out = node.evaluate(torch.from_numpy(drawing[None]), frames)
    report = json.loads(out["result"][7])
    assert report["frames"] == 3 and len(report["per_frame"]) == 3
    assert out["result"][6] == report["scores"]["temporal"]
    from zrealism_pack.zrealism_core.errors import InputError as PackInputError

    with pytest.raises(PackInputError, match="batch"):
        node.evaluate(torch.from_numpy(np.stack([drawing] * 2)), frames)


# ---------------------------------------------------------------- CLI

def test_cli_image_json_and_panel(tmp_path, drawing, photoreal, character_mask, capsys):
    from zrealism_core.cli import main

    src, res, msk, pnl = tmp_path / "s.png", tmp_path / "r.png", tmp_path / "m.png", tmp_path / "p.png"
    save_image(drawing, src)
    save_image(photoreal, res)
    save_image(character_mask, msk)
    assert main(["evaluate", str(src), str(res), "--mask", str(msk), "--json", "--panel", str(pnl)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 1 and 0.0 <= report["scores"]["overall"] <= 1.0
    assert load_image(pnl).shape[1] > load_image(pnl).shape[0]
    assert main(["evaluate", str(src), str(src)]) == 0
    assert "silhouette 1.000" in capsys.readouterr().out


def test_cli_clip_folder_and_errors(tmp_path, drawing, photoreal, capsys):
    from zrealism_core.cli import main

    src = save_image(drawing, tmp_path / "s.png")
    folder = tmp_path / "frames"
    for i, f in enumerate(_clip(photoreal, 3)):
        save_image(f, folder / f"frame_{i}.png")
    assert main(["evaluate", str(src), str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == 3 and "temporal" in report["scores"]
    assert main(["evaluate", str(src), str(tmp_path / "missing.png")]) == 2
    assert "not found" in capsys.readouterr().err
