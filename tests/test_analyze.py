"""HeuristicAnalyzer core: bounds, determinism, monotone response to structure, prompts, CLI."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from zrealism_core import Analysis, InputError, RecommendedParams, analyze
from zrealism_core.analysis import RANGES, recommend
from zrealism_core.cli import main as cli_main
from zrealism_core.imaging.sample import sample_character, write_sample
from zrealism_core.text.tokens import count_tokens

FEATURES = {"edge_density", "line_art_ratio", "gradient_energy", "laplacian_energy", "palette_size",
            "local_variance", "flat_fraction", "saturation", "brightness", "contrast", "subject_area",
            "bbox_aspect"}


def lines_image(n: int, size: int = 256) -> np.ndarray:
    """A flat skin-coloured card with n dark strokes: more strokes = more structure."""
    im = np.full((size, size, 3), (0.92, 0.78, 0.66), np.float32)
    for i in range(n):
        y = int(10 + i * (size - 30) / max(n, 1))
        cv2.line(im, (10, y), (size - 10, y + 12), (0.05, 0.05, 0.05), 2, cv2.LINE_AA)
    return im


def check_bounds(p: RecommendedParams) -> None:
    for key, (lo, hi) in RANGES.items():
        v = getattr(p, key)
        assert lo <= v <= hi, (key, v)
    assert isinstance(p.steps, int)


def test_features_params_and_types():
    a = analyze(sample_character(256))
    assert isinstance(a, Analysis) and isinstance(a.params, RecommendedParams)
    assert FEATURES <= set(a.features)
    assert all(isinstance(v, float) and np.isfinite(v) for v in a.features.values())
    assert a.mask_source == "alpha"
    assert 0.15 < a.features["subject_area"] < 0.45 and a.features["bbox_aspect"] > 1.5  # a standing figure
    check_bounds(a.params)


@pytest.mark.parametrize(
    "image",
    [
        lambda: sample_character(256, "flat"),
        lambda: np.random.default_rng(1).random((128, 160, 3)).astype(np.float32),
        lambda: np.zeros((64, 64, 3), np.float32),
        lambda: np.ones((64, 64, 3), np.float32),
        lambda: lines_image(60, 128),
        lambda: np.full((8, 8, 3), 0.5, np.float32),
    ],
)
def test_bounds_on_extreme_images(image):
    check_bounds(analyze(image()).params)


def test_mapping_is_bounded_and_monotone_in_scores():
    prev = None
    for s in np.linspace(-0.5, 1.5, 41):
        p = recommend({"structure_score": s, "shading_score": 0.5, "figure_score": 0.5})
        check_bounds(p)
        if prev is not None:
            assert p.depth_scale >= prev.depth_scale and p.pose_scale >= prev.pose_scale
            assert p.control_end >= prev.control_end and p.steps >= prev.steps
            assert p.denoise <= prev.denoise and p.cfg <= prev.cfg
        prev = p
    lo = recommend({"structure_score": 0.5, "shading_score": 0.0, "figure_score": 0.0})
    hi = recommend({"structure_score": 0.5, "shading_score": 1.0, "figure_score": 1.0})
    assert hi.depth_scale > lo.depth_scale and hi.pose_scale > lo.pose_scale


def test_deterministic():
    img = sample_character(256, "flat")
    a, b = analyze(img, subject="a girl"), analyze(img.copy(), subject="a girl")
    assert a.features == b.features and a.params == b.params
    assert (a.positive, a.negative, a.report) == (b.positive, b.negative, b.report)


def test_monotone_in_line_density():
    card = np.ones((256, 256), np.float32)  # the whole card is the subject
    results = [analyze(lines_image(n), card) for n in (0, 3, 6, 12, 24)]
    s = [r.features["structure_score"] for r in results]
    assert all(b > a for a, b in zip(s, s[1:])), s
    for a, b in zip(results, results[1:]):
        assert b.features["edge_density"] >= a.features["edge_density"]
        assert b.params.depth_scale >= a.params.depth_scale
        assert b.params.pose_scale >= a.params.pose_scale
        assert b.params.control_end >= a.params.control_end
        assert b.params.denoise <= a.params.denoise
        assert b.params.cfg <= a.params.cfg
    flat, rich = results[0].params, results[-1].params
    assert rich.denoise < flat.denoise - 0.15 and rich.depth_scale > flat.depth_scale + 0.2


def test_resolution_normalised():
    small, big = analyze(sample_character(512)), analyze(sample_character(1024))
    for key in ("edge_density", "line_art_ratio", "structure_score"):
        assert abs(small.features[key] - big.features[key]) <= 0.15 * max(big.features[key], 1e-3), key
    assert abs(small.params.denoise - big.params.denoise) < 0.03


def test_mask_limits_the_measurement():
    img = lines_image(0, 256)
    img[:, 128:] = lines_image(40, 256)[:, 128:]  # clutter on the right half only
    left = np.zeros((256, 256), np.float32)
    left[:, :128] = 1
    assert analyze(img, left).features["edge_density"] < 0.02
    assert analyze(img, 1 - left).features["edge_density"] > 0.05


def test_prompts_subject_dedup_and_token_limit():
    a = analyze(sample_character(256), subject="a young woman with orange hair, Photorealistic")
    assert a.positive.startswith("a young woman with orange hair")
    assert a.positive.lower().count("photorealistic") == 1
    assert count_tokens(a.positive) <= 77 and count_tokens(a.negative) <= 77
    assert a.positive_tokens == count_tokens(a.positive)
    assert "lighting" in a.positive and "cartoon" in a.negative
    long_subject = " ".join(["a very tall knight in shining silver armour"] * 20)
    b = analyze(sample_character(256), subject=long_subject)
    assert count_tokens(b.positive) <= 77 and b.positive.startswith("a very tall knight")
    assert b.dropped and "77 tokens" in b.report


def test_lighting_follows_brightness():
    dark = np.clip(sample_character(256, (0.1, 0.1, 0.12)) * 0.3, 0, 1)
    assert "low-key" in analyze(dark).positive
    assert "low-key" not in analyze(sample_character(256, "flat")).positive


def test_report_is_readable():
    a = analyze(sample_character(256))
    for words in ("structure", "depth scale", "denoise", "steps", "cfg", "Positive", "Negative"):
        assert words in a.report
    assert f"{a.params.denoise:.2f}" in a.report


def test_bad_input():
    img = sample_character(64, "flat")
    with pytest.raises(InputError, match="at least"):
        analyze(np.zeros((1, 1, 3), np.float32))
    with pytest.raises(InputError, match="NaN"):
        analyze(np.full((16, 16, 3), np.nan, np.float32))
    with pytest.raises(InputError, match="mask is empty"):
        analyze(img, np.zeros((64, 64), np.float32))
    with pytest.raises(InputError, match="resize the mask"):
        analyze(img, np.ones((10, 64), np.float32))
    with pytest.raises(InputError, match="subject must be text"):
        analyze(img, subject=3)


def test_cli_analyze_json(tmp_path, capsys):
    path = write_sample(tmp_path / "s.png", 256)
    assert cli_main(["analyze", str(path), "--json", "--subject", "a girl"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert FEATURES <= set(data["features"])
    assert set(data["params"]) == {"depth_scale", "pose_scale", "denoise", "steps", "cfg", "control_end", "detail_scale"}
    assert data["positive"].startswith("a girl")
    assert cli_main(["analyze", str(tmp_path / "nope.png")]) == 2


def test_detail_scale_is_recommended_for_drawings_and_none_for_photos():
    from skimage import data

    from zrealism_core.imaging.sample import sample_character

    drawing = analyze(sample_character(384, background=(1.0, 1.0, 1.0)))
    assert 0.3 <= drawing.params.detail_scale <= 0.7
    assert "detail scale 0." in drawing.report
    for photo in (data.astronaut(), data.coffee(), data.chelsea()):
        a = analyze(photo)
        assert a.params.detail_scale == 0.0 and "detail scale none (photo)" in a.report
