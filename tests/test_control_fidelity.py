"""Control fidelity in the evaluator: edge_f (always), depth_corr and pose_pck (tiny detectors)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from zrealism_core.control import maps as control_maps
from zrealism_core import evaluate, evaluate_video
from zrealism_core.evaluation.panel import render_panel
from zrealism_core.imaging.sample import sample_character
from zrealism_core.metrics.control_fidelity import depth_correlation, edge_f, pck
from zrealism_core.models import annotators
from zrealism_core.models import detectors as detector_cache
from zrealism_core.testing.tiny_annotators import SilhouetteBody, write_openpose_files, write_tiny_depth_anything


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(annotators.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def sample():
    rgba = sample_character(256)
    a = rgba[..., 3:]
    return (rgba[..., :3] * a + (1 - a)).astype(np.float32), rgba[..., 3]


def _shift(img: np.ndarray, dx: int) -> np.ndarray:
    out = np.ones_like(img)
    out[:, dx:] = img[:, :-dx]
    return out


def _other_character(n: int = 256) -> np.ndarray:
    img = np.ones((n, n, 3), np.float32)
    k = n / 256
    cv2.circle(img, (int(128 * k), int(80 * k)), int(45 * k), (0.95, 0.8, 0.7), -1)
    cv2.circle(img, (int(128 * k), int(80 * k)), int(45 * k), (0.05, 0.05, 0.05), max(1, int(2 * k)))
    cv2.rectangle(img, (int(85 * k), int(135 * k)), (int(170 * k), int(235 * k)), (0.2, 0.5, 0.25), -1)
    cv2.rectangle(img, (int(85 * k), int(135 * k)), (int(170 * k), int(235 * k)), (0.05, 0.05, 0.05), max(1, int(2 * k)))
    return img


def test_edge_f_is_one_for_identity_and_falls_with_shift(sample):
    img, mask = sample
    region = mask > 0.01
    assert edge_f(img, img, region)["f"] == 1.0
    shifted = [edge_f(img, _shift(img, s), None)["f"] for s in (2, 4, 8)]
    assert 1.0 > shifted[0] > shifted[1] > shifted[2], shifted


def test_edge_f_of_a_different_character_is_much_lower(sample):
    img, _ = sample
    other = edge_f(img, _other_character(), None)["f"]
    assert other < 0.5 * edge_f(img, _shift(img, 2), None)["f"]
    assert other < 0.5


def test_a_cartoon_ranks_above_its_blurred_copy(sample):
    img, _ = sample
    scores = [edge_f(img, img if s == 0 else cv2.GaussianBlur(img, (0, 0), s), None)["f"] for s in (0, 1, 2, 3)]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1] and scores[2] > scores[3]


def test_report_has_control_in_to_dict_and_json_and_not_in_overall(sample, tmp_path):
    img, mask = sample
    report = evaluate(img, _shift(img, 4), mask, annotator_dirs=[tmp_path])
    assert set(report.control) == {"edge_f", "depth_corr", "pose_pck"}
    assert 0.0 < report.control["edge_f"] < 1.0
    assert report.control["depth_corr"] is None and report.control["pose_pck"] is None  # no detector files
    assert any("depth_corr not computed" in n for n in report.notes)
    assert any("pose_pck not computed" in n for n in report.notes)
    data = json.loads(report.to_json())
    assert data["control"] == report.to_dict()["control"] == report.control
    assert "edge_f" not in report.scores and "edge_f" not in report.gating
    off = evaluate(img, _shift(img, 4), mask, control=False)
    assert off.scores == report.scores  # overall is untouched by the control section
    panel = render_panel(None, None, report)
    assert panel.shape[1] > render_panel(None, None, off).shape[1]  # the control edge overlay tile


def test_clip_reports_control_on_its_worst_frame(sample, tmp_path):
    img, mask = sample
    report = evaluate_video(img, [img, _shift(img, 8)], mask, annotator_dirs=[tmp_path])
    assert report.control["edge_f"] < 1.0
    assert any("worst frame" in n for n in report.notes)


def _asymmetric(n: int = 256):
    """An off-centre figure with one raised arm, so a mirrored result moves every keypoint."""
    img = np.ones((n, n, 3), np.float32)
    ink = (0.25, 0.2, 0.45)
    cv2.circle(img, (90, 50), 18, ink, -1)
    cv2.line(img, (90, 68), (90, 150), ink, 12)
    cv2.line(img, (90, 90), (40, 40), ink, 8)
    cv2.line(img, (90, 95), (140, 120), ink, 8)
    cv2.line(img, (90, 150), (70, 230), ink, 10)
    cv2.line(img, (90, 150), (115, 230), ink, 10)
    cv2.rectangle(img, (75, 100), (105, 140), (0.9, 0.3, 0.2), -1)
    return img, (img.min(axis=2) < 0.95).astype(np.float32)


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("annot")
    write_tiny_depth_anything(root)
    write_openpose_files(root)
    return root


@pytest.fixture()
def stub_pose(detectors):
    detector_cache.unload_detectors()
    control_maps.pose_map(np.ones((64, 64, 3), np.float32), annotator_dirs=[detectors], resolution=64)
    (det,) = [d for k, d in detector_cache._cache.items() if k[0] == "openpose"]
    det.body_estimation = SilhouetteBody(det.body_estimation)
    yield det
    detector_cache.unload_detectors()


def test_depth_corr_and_pose_pck_are_one_for_identity_and_lower_for_a_flip(detectors, stub_pose):
    img, mask = _asymmetric()
    same = evaluate(img, img, mask, annotator_dirs=[detectors])
    assert same.control["depth_corr"] == 1.0 and same.control["pose_pck"] == 1.0
    flipped = img[:, ::-1].copy()
    flip = evaluate(img, flipped, mask, annotator_dirs=[detectors])
    assert flip.control["depth_corr"] < 0.9
    assert flip.control["pose_pck"] < 0.5
    assert flip.control["edge_f"] < same.control["edge_f"]


def test_source_maps_given_are_used_instead_of_detecting(detectors, stub_pose):
    img, mask = _asymmetric()
    depth = control_maps.depth_map(img, annotator_dirs=[detectors])
    pose = control_maps.pose_map(img, annotator_dirs=[detectors], mask=mask)
    calls = len(stub_pose.body_estimation.calls)
    report = evaluate(img, img, mask, depth_map=depth, pose_map=pose, annotator_dirs=[detectors])
    assert len(stub_pose.body_estimation.calls) == calls + 1  # only the result was detected
    assert report.control["pose_pck"] == 1.0 and report.control["depth_corr"] == 1.0
    # a depth map that is not the source's lowers depth_corr
    wrong = evaluate(img, img, mask, depth_map=depth[:, ::-1].copy(), annotator_dirs=[detectors])
    assert wrong.control["depth_corr"] < report.control["depth_corr"]


def test_metric_helpers():
    d = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    assert depth_correlation(d, 3 * d + 2) == pytest.approx(1.0)  # scale and shift invariant
    assert depth_correlation(d, -d) == 0.0
    src = [(0.0, 0.0), (10.0, 0.0), None, (10.0, 10.0)]
    assert pck(src, src) == 1.0
    assert pck(src, [(0.5, 0.0), (30.0, 0.0), (5, 5), None]) == pytest.approx(1 / 3)
    assert pck([None, (1.0, 1.0)], src) is None


def test_cli_evaluate_reports_control_with_given_maps(tmp_path, detectors, stub_pose, capsys):
    from zrealism_core.cli import main
    from zrealism_core.imaging.images import save_image

    img, mask = _asymmetric()
    src, msk, dep = tmp_path / "s.png", tmp_path / "m.png", tmp_path / "d.png"
    save_image(img, src)
    save_image(mask, msk)
    save_image(control_maps.depth_map(img, annotator_dirs=[detectors]), dep)
    assert main(["evaluate", str(src), str(src), "--mask", str(msk), "--depth-map", str(dep),
                 "--annotators", str(detectors), "--json"]) == 0
    control = json.loads(capsys.readouterr().out)["control"]
    assert control["edge_f"] == 1.0 and control["pose_pck"] == 1.0 and control["depth_corr"] > 0.95
