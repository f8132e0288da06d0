"""Known-value and behaviour tests of the metric modules (zrealism_core.metrics).

The CIEDE2000 oracle (Sharma 2005) lives in test_color.py; here the metrics built on it.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from zrealism_core.imaging.colour import lab_to_rgb, rgb_to_lab
from zrealism_core.imaging.sample import pink_noise
from zrealism_core.metrics import calibration, edges, silhouette, temporal, texture
from zrealism_core.metrics import colour_fidelity as colour


# ---------------------------------------------------------------- generated images

def textured_scene(n: int = 256, seed: int = 0) -> np.ndarray:
    """A colourful, textured RGB test scene (blobs of colour with 1/f texture)."""
    base = np.stack([pink_noise(n, seed + c, beta=2.2) for c in range(3)], axis=-1) * 0.18 + 0.5
    tex = pink_noise(n, seed + 7, beta=1.2)[..., None] * 0.06
    return np.clip(base + tex, 0.0, 1.0).astype(np.float32)


def hue_rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    lab = rgb_to_lab(rgb).astype(np.float64)
    t = math.radians(degrees)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    lab[..., 1] = a * math.cos(t) - b * math.sin(t)
    lab[..., 2] = a * math.sin(t) + b * math.cos(t)
    return lab_to_rgb(lab)


def square_mask(n: int, x0: int, y0: int, side: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=bool)
    m[y0 : y0 + side, x0 : x0 + side] = True
    return m


# ---------------------------------------------------------------- calibration helpers

def test_ramp_and_exp_are_clipped_and_finite():
    assert calibration.ramp(0.0, 5, 25) == 1.0
    assert calibration.ramp(15.0, 5, 25) == pytest.approx(0.5)
    assert calibration.ramp(99.0, 5, 25) == 0.0
    assert calibration.ramp(float("nan"), 5, 25) == 0.0
    assert calibration.exp_score(0.0, 2.0) == 1.0
    assert calibration.exp_score(2.0, 2.0) == pytest.approx(math.exp(-1))
    assert calibration.exp_score(float("inf"), 2.0) == 0.0


# ---------------------------------------------------------------- silhouette

def test_silhouette_identity_and_disjoint():
    a = square_mask(128, 10, 10, 40)
    b = square_mask(128, 70, 70, 40)
    same = silhouette.silhouette_score(a, a)
    assert same["score"] == 1.0 and same["iou"] == 1.0 and same["boundary_f"] == 1.0
    apart = silhouette.silhouette_score(a, b)
    assert apart["iou"] == 0.0 and apart["boundary_f"] == 0.0 and apart["score"] == 0.0


@pytest.mark.parametrize("k", [1, 3, 8, 20])
def test_iou_of_k_pixel_shift_is_analytic(k):
    side = 60
    a = square_mask(200, 50, 50, side)
    b = square_mask(200, 50 + k, 50, side)
    assert silhouette.iou(a, b) == pytest.approx((side - k) / (side + k), abs=1e-12)


def test_boundary_f_is_one_iff_shift_within_tolerance():
    a = square_mask(200, 50, 50, 60)
    tol = 4
    assert silhouette.boundary_f(a, square_mask(200, 50 + tol, 50, 60), tol)["f"] == 1.0
    assert silhouette.boundary_f(a, square_mask(200, 50 + tol + 1, 50, 60), tol)["f"] < 1.0


def test_davis_tolerance_and_empty_masks():
    assert silhouette.boundary_tolerance((512, 512)) == 6  # ceil(0.008 * 724.1)
    empty = np.zeros((32, 32), bool)
    assert silhouette.silhouette_score(empty, empty)["score"] == 1.0
    assert silhouette.silhouette_score(empty, square_mask(32, 4, 4, 8))["score"] == 0.0


def test_silhouette_falls_with_misalignment():
    a = square_mask(256, 80, 80, 90)
    scores = [silhouette.silhouette_score(a, square_mask(256, 80 + k, 80, 90))["score"] for k in (0, 2, 5, 10, 20, 40)]
    assert all(x > y for x, y in zip(scores, scores[1:])), scores


# ---------------------------------------------------------------- edges

def test_edge_identity_and_shift_monotonic():
    from zrealism_core.imaging.sample import sample_character

    img = sample_character(256, (1.0, 1.0, 1.0))  # line art on white
    char = img.min(axis=-1) < 0.97
    assert edges.edge_fidelity(img, img, char)["score"] == pytest.approx(1.0, abs=1e-9)
    scores = []
    for k in (0, 1, 2, 4, 8, 16):
        moved = np.roll(img, k, axis=1)
        scores.append(edges.edge_fidelity(img, moved, char | np.roll(char, k, axis=1))["score"])
    assert all(x > y for x, y in zip(scores, scores[1:])), scores
    assert scores[-1] < 0.3


def test_edge_ignores_gain_and_offset_but_not_unrelated_content():
    img = textured_scene(256, seed=1)
    dimmer = np.clip(img * 0.7 + 0.1, 0, 1)
    assert edges.edge_fidelity(img, dimmer)["score"] > 0.99
    assert edges.edge_fidelity(img, textured_scene(256, seed=50))["score"] < 0.3


def test_pearson_constant_maps():
    z = np.zeros((8, 8), np.float32)
    assert edges.pearson(z, z) == 1.0
    assert edges.pearson(z, np.arange(64, dtype=np.float32).reshape(8, 8)) == 0.0


# ---------------------------------------------------------------- colour

def test_color_and_palette_fall_with_hue_rotation():
    img = textured_scene(192, seed=3)
    col, pal = [], []
    for deg in (0, 15, 45, 90, 180):
        rot = hue_rotate(img, deg) if deg else img
        col.append(colour.color_fidelity(img, rot)["delta_e_mean"])
        pal.append(colour.palette_fidelity(img, rot)["delta_e"])
    assert col[0] == 0.0 and pal[0] == 0.0
    assert all(x < y for x, y in zip(col, col[1:])), col
    # The palette is alignment-free: past ~90 deg a scene with many hues maps onto its own other
    # colours, so it is only required to grow up to 90 deg (and stay far from 0 beyond).
    assert all(x < y for x, y in zip(pal[:4], pal[1:4])), pal
    assert pal[4] > pal[1]


def test_lowpass_makes_colour_texture_tolerant():
    """S-CIELAB idea: fine texture around the same mean colour costs far less than a hue change."""
    flat = np.full((128, 128, 3), (0.8, 0.5, 0.3), np.float32)
    textured = np.clip(flat + pink_noise(128, 5, beta=0.5)[..., None] * 0.05, 0, 1)
    d_tex = colour.color_fidelity(flat, textured)["delta_e_mean"]
    d_hue = colour.color_fidelity(flat, hue_rotate(flat, 40))["delta_e_mean"]
    assert d_tex < 2.0 < d_hue


def test_kmeans_is_deterministic_and_handles_few_colours():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 1.0, size=(500, 3)) for c in ((50, 0, 0), (70, 40, 10), (30, -20, 30))])
    c1, w1 = colour.kmeans_lab(pts, 3)
    c2, w2 = colour.kmeans_lab(pts, 3)
    assert np.array_equal(c1, c2) and np.array_equal(w1, w2)
    assert sorted(np.round(w1, 2)) == pytest.approx([1 / 3] * 3, abs=0.01)
    one, w = colour.kmeans_lab(np.tile([[50.0, 1.0, 2.0]], (100, 1)), 6)
    assert one.shape == (1, 3) and w.tolist() == [1.0]


def test_colour_moments_two_colour_closed_form():
    """Two values u, v with fractions p, 1-p: E = pu+(1-p)v, sigma = |u-v| sqrt(p(1-p)),
    s = cbrt(p(1-p)(1-2p)) (u-v)  (per LAB channel)."""
    p = 0.25
    u_rgb, v_rgb = np.array([0.9, 0.2, 0.1], np.float32), np.array([0.1, 0.3, 0.8], np.float32)
    img = np.empty((40, 40, 3), np.float32)
    img[:10] = u_rgb
    img[10:] = v_rgb
    m = colour.lab_moments(img, lab=rgb_to_lab(img.reshape(-1, 3)))
    u, v = rgb_to_lab(u_rgb).astype(np.float64), rgb_to_lab(v_rgb).astype(np.float64)
    assert m[:, 0] == pytest.approx(p * u + (1 - p) * v, abs=1e-3)
    assert m[:, 1] == pytest.approx(np.abs(u - v) * math.sqrt(p * (1 - p)), abs=1e-3)
    assert m[:, 2] == pytest.approx(np.cbrt(p * (1 - p) * (1 - 2 * p)) * (u - v), abs=1e-3)


def test_moments_diagnostic_reports_brightness_shift():
    img = textured_scene(128, seed=4)
    d = colour.moments_diagnostic(img, np.clip(img + 0.1, 0, 1))
    assert d["brightness_shift_L"] > 3.0
    assert abs(d["cast_a"]) < abs(d["brightness_shift_L"])


# ---------------------------------------------------------------- texture (NSS)

def test_ggd_fit_recovers_gaussian_and_laplace_shapes():
    rng = np.random.default_rng(0)
    a_gauss, var = texture.ggd_fit(rng.normal(0, 1, (1, 200_000)))
    a_lap, _ = texture.ggd_fit(rng.laplace(0, 1, (1, 200_000)))
    assert a_gauss[0] == pytest.approx(2.0, abs=0.05) and var[0] == pytest.approx(1.0, abs=0.02)
    assert a_lap[0] == pytest.approx(1.0, abs=0.05)


def test_aggd_fit_symmetric_gaussian_and_asymmetry_sign():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (1, 200_000))
    alpha, eta, lvar, rvar = texture.aggd_fit(x)[0]
    assert alpha == pytest.approx(2.0, abs=0.05) and abs(eta) < 0.02
    assert lvar == pytest.approx(rvar, rel=0.03)
    skewed = np.where(x > 0, 2.0 * x, x)
    assert texture.aggd_fit(skewed)[0, 1] > 0.3  # heavier right side -> positive mean


def test_shipped_nss_model_matches_a_refit():
    pytest.importorskip("skimage.data")
    from zrealism_core.metrics.nss_model import COV, MU

    mu, cov = texture.fit_pristine_model(texture.pristine_images())
    # Loose enough for another CPU's SIMD rounding (which can move a shape estimate by one
    # 0.001 grid step), tight enough to catch any change of features or corpus.
    assert np.allclose(mu, MU, rtol=1e-3, atol=1e-6)
    assert np.allclose(cov, COV, rtol=1e-2, atol=1e-3 * np.abs(COV).max())


def cartoonise(photo: np.ndarray) -> np.ndarray:
    """Flat cartoon fill: k-means colour quantisation of the picture + black outlines."""
    lab = rgb_to_lab(photo).reshape(-1, 3)
    centres, _ = colour.kmeans_lab(lab[::7], 6)
    labels = ((lab[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    cartoon = lab_to_rgb(centres[labels].reshape(photo.shape))
    edges_ = cv2.Canny((photo.mean(-1) * 255).astype(np.uint8), 60, 120) > 0
    cartoon[edges_] = 0.0
    return cartoon


def plastic(photo: np.ndarray) -> np.ndarray:
    """The "plastic skin" look: 4 passes of an edge-keeping bilateral filter."""
    out = photo.copy()
    for _ in range(4):
        out = cv2.bilateralFilter(out, 9, 0.3, 75)
    return out


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    img = data.coffee()  # held out of the pristine model on purpose
    return np.ascontiguousarray(img[:384, 100:484]).astype(np.float32) / 255.0


def test_texture_photo_beats_flat_cartoon_and_plastic(photo):
    s_photo = texture.texture_realism(photo)["score"]
    s_cartoon = texture.texture_realism(cartoonise(photo))["score"]
    s_plastic = texture.texture_realism(plastic(photo))["score"]
    assert s_photo > 0.8
    assert s_photo > s_plastic + 0.15, (s_photo, s_plastic)
    assert s_photo > s_cartoon + 0.4, (s_photo, s_cartoon)


def test_texture_falls_with_blur_and_flat_fill_is_zero(photo):
    scores = [texture.texture_realism(cv2.GaussianBlur(photo, (0, 0), s) if s else photo)["score"] for s in (0, 1, 2, 4)]
    assert all(x > y for x, y in zip(scores, scores[1:])), scores
    flat = np.full((256, 256, 3), 0.6, np.float32)
    r = texture.texture_realism(flat)
    assert r["score"] == 0.0 and r["textured_fraction"] == 0.0


def test_texture_tiny_and_masked_inputs_are_finite():
    r = texture.texture_realism(np.full((10, 10, 3), 0.5, np.float32))
    assert r["score"] == 0.0 and r["notes"]
    img = textured_scene(128)
    m = np.zeros((128, 128), bool)
    m[40:60, 40:60] = True
    assert 0.0 <= texture.texture_realism(img, m)["score"] <= 1.0


def _crop512(img) -> np.ndarray:
    """Short side scaled down to 512 (area), then the centre 512x512, as float 0..1."""
    img = np.asarray(img)[..., :3].astype(np.float32) / 255.0
    h, w = img.shape[:2]
    if min(h, w) > 512:
        s = 512 / min(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    s = min(h, w)
    return np.ascontiguousarray(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s])


def held_out_photos() -> dict:
    """Photos that played no part in the pristine fit or the anchors (see calibration.py)."""
    import matplotlib
    from PIL import Image
    from skimage import data

    hopper = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    left, right, _ = data.stereo_motorcycle()
    return {"grace_hopper": _crop512(hopper), "motorcycle_left": _crop512(left), "motorcycle_right": _crop512(right)}


def test_texture_realism_on_held_out_photos():
    """Fit and anchors come from scikit-image photos; these photos were in neither."""
    for name, img in held_out_photos().items():
        s_photo = texture.texture_realism(img)["score"]
        s_cartoon = texture.texture_realism(cartoonise(img))["score"]
        s_plastic = texture.texture_realism(plastic(img))["score"]
        assert s_photo > 0.8, (name, s_photo)
        assert s_photo > s_cartoon + 0.4, (name, s_photo, s_cartoon)
        assert s_photo > s_plastic, (name, s_photo, s_plastic)


# ---------------------------------------------------------------- temporal

@pytest.mark.parametrize("shift", [(3, 2), (-2, 4)])
def test_dis_flow_recovers_known_translation(photo, shift):
    """Oracle: a pure integer translation; end-point error < 0.1 px away from the borders."""
    dx, dy = shift
    g = cv2.cvtColor((photo * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    moved = cv2.warpAffine(g, np.float32([[1, 0, dx], [0, 1, dy]]), g.shape[::-1], borderMode=cv2.BORDER_REFLECT)
    flow = temporal.dis_flow(g, moved)
    inner = flow[32:-32, 32:-32]
    epe = np.linalg.norm(inner - np.array([dx, dy], np.float32), axis=-1)
    assert epe.mean() < 0.1, epe.mean()


def _pan(photo, n=5, step=1.0, gain=None, noise=0.0):
    rng = np.random.default_rng(0)
    out = []
    h, w = 192, 192
    for t in range(n):
        f = cv2.warpAffine(photo, np.float32([[1, 0, -step * t], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REFLECT)
        if gain:
            f = f * (1.0 + gain * (1 if t % 2 else -1))
        if noise:
            f = f + rng.normal(0, noise, f.shape).astype(np.float32)
        out.append(np.clip(f, 0, 1).astype(np.float32))
    return out


def test_static_clip_has_zero_warp_error_and_full_score(photo):
    clip = [photo[:192, :192]] * 4
    r = temporal.temporal_consistency(clip)
    assert r["warp_error"] == 0.0 and r["luminance_flicker"] == 0.0 and r["score"] == 1.0


def test_temporal_falls_with_flicker(photo):
    scores = [temporal.temporal_consistency(_pan(photo, gain=g))["score"] for g in (0.0, 0.01, 0.03, 0.08)]
    assert all(x > y for x, y in zip(scores, scores[1:])), scores
    assert scores[0] > 0.6 and scores[-1] < 0.1


def test_temporal_boiling_costs_more_than_smooth_motion(photo):
    smooth = temporal.temporal_consistency(_pan(photo))
    boil = temporal.temporal_consistency(_pan(photo, noise=6 / 255))
    assert boil["warp_error"] > 2 * smooth["warp_error"]


def test_occlusion_mask_flags_inconsistent_flow():
    fw = np.zeros((32, 32, 2), np.float32)
    bw = np.zeros_like(fw)
    assert not temporal.occlusion_mask(fw, bw).any()
    bw[10:20, 10:20] = 3.0  # backward flow disagrees there
    occ = temporal.occlusion_mask(fw, bw)
    assert occ[12:18, 12:18].all() and not occ[:5, :5].any()


def test_luminance_flicker_ignores_linear_fade():
    frames = [np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.3, 0.4, 0.5)]
    assert temporal.luminance_flicker(frames) == pytest.approx(0.0, abs=1e-4)
    flick = [np.full((8, 8, 3), v, np.float32) for v in (0.4, 0.5, 0.4, 0.5)]
    assert temporal.luminance_flicker(flick) == pytest.approx(2 * 0.1 * 255, rel=1e-3)
