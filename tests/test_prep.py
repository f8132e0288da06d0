"""WhiteBackgroundPrep core: masks against drawn ground truth, pure white, unchanged colours, no halo,
options, bad input, and the `zrealism prep` command."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from zrealism_core import InputError, prepare_white_background
from zrealism_core.cli import main as cli_main
from zrealism_core.imaging.colour import ciede2000, rgb_to_lab
from zrealism_core.imaging.images import load_image

SKIN, SHIRT, HAIR, INK = (0.98, 0.85, 0.75), (1.0, 1.0, 1.0), (0.35, 0.2, 0.6), (0.05, 0.04, 0.06)


def draw_character(size: int = 256, ss: int = 4):
    """A test character drawn here: black-outlined body, head and hair, with WHITE eye whites and a
    WHITE shirt inside it, rendered at 4x and area-averaged (anti-aliased edges).
    Returns (straight RGB H,W,3, coverage alpha H,W, eye mask H,W bool)."""
    n = size * ss
    rgb = np.zeros((n, n, 3), np.float32)
    cov = np.zeros((n, n), np.float32)
    eye = np.zeros((n, n), np.uint8)
    k = n / 100.0

    def shape(draw, colour, line=True):
        if line:
            draw(rgb, INK, int(2.0 * k))
            draw(cov, 1.0, int(2.0 * k))
        draw(rgb, colour, -1)
        draw(cov, 1.0, -1)

    P = lambda pts: (np.asarray(pts) * k).astype(np.int32)  # noqa: E731
    body = P([(35, 50), (65, 50), (72, 92), (28, 92)])
    shape(lambda im, c, t: cv2.fillPoly(im, [body], c) if t < 0 else cv2.polylines(im, [body], True, c, t), SHIRT)
    shape(lambda im, c, t: cv2.circle(im, (int(50 * k), int(32 * k)), int(19 * k), c, t), SKIN)
    shape(lambda im, c, t: cv2.ellipse(im, (int(50 * k), int(18 * k)), (int(20 * k), int(9 * k)), 0, 0, 360, c, t), HAIR)
    for ex in (43, 57):
        shape(lambda im, c, t: cv2.ellipse(im, (int(ex * k), int(33 * k)), (int(4 * k), int(5 * k)), 0, 0, 360, c, t), SHIRT)
        cv2.ellipse(eye, (int(ex * k), int(33 * k)), (int(3 * k), int(4 * k)), 0, 0, 360, 1, -1)
    # a diagonal arm: a thin anti-aliased stroke
    cv2.line(rgb, (int(30 * k), int(55 * k)), (int(15 * k), int(80 * k)), INK, int(3 * k))
    cv2.line(cov, (int(30 * k), int(55 * k)), (int(15 * k), int(80 * k)), 1.0, int(3 * k))
    alpha = cv2.resize(cov, (size, size), interpolation=cv2.INTER_AREA)
    pre = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    straight = np.where(alpha[..., None] > 0, pre / np.maximum(alpha[..., None], 1e-6), 0).clip(0, 1).astype(np.float32)
    eye_small = cv2.resize(eye, (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
    return straight, np.clip(alpha, 0, 1).astype(np.float32), eye_small


def composite(fg, alpha, bg):
    a = alpha[..., None]
    return (fg * a + np.asarray(bg, np.float32) * (1 - a)).astype(np.float32)


def soft_iou(a, b):
    return float(np.minimum(a, b).sum() / np.maximum(a, b).sum())


def de(x, y):
    return ciede2000(rgb_to_lab(x), rgb_to_lab(y))


@pytest.fixture(scope="module")
def character():
    return draw_character(256)


BACKGROUNDS = [(1.0, 1.0, 1.0), (0.25, 0.62, 0.35), (0.62, 0.8, 0.93), (0.85, 0.3, 0.3)]


@pytest.mark.parametrize("bg", BACKGROUNDS)
def test_flat_background_mask_white_colours_and_edges(character, bg):
    fg, gt, eye = character
    img = composite(fg, gt, bg)
    r = prepare_white_background(img)
    assert r.source == "auto"
    assert r.image.shape == img.shape and r.image.dtype == np.float32
    assert r.mask.shape == gt.shape and r.mask.dtype == np.float32
    # mask against the drawn coverage
    assert soft_iou(r.mask, gt) >= 0.97
    # white inside the character (eye whites, white shirt) stays character even on a white background
    assert r.mask[eye].min() == 1.0
    # background pixels are pure white
    assert np.all(r.image[gt == 0] >= 1.0 - 1.0 / 255)
    far = cv2.dilate((gt > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    assert np.all(r.image[far] == 1.0)
    # subject colours unchanged on the eroded subject
    solid = cv2.erode((gt >= 1.0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert de(r.image[solid], fg[solid]).mean() < 1.0
    # no halo: the anti-aliased ring matches the character composited onto white
    ring = (gt > 0) & (gt < 1)
    truth = composite(fg, gt, (1, 1, 1))
    ring_de = de(r.image[ring], truth[ring])
    assert ring_de.mean() < 3.0, ring_de.mean()
    assert np.percentile(ring_de, 95) < 12.0


def test_halo_check_would_catch_no_decontamination(character):
    """The ring test above is able to fail: without decontamination a coloured background leaves a halo."""
    fg, gt, _ = character
    img = composite(fg, gt, (0.25, 0.62, 0.35))
    ring = (gt > 0) & (gt < 1)
    truth = composite(fg, gt, (1, 1, 1))
    good = de(prepare_white_background(img).image[ring], truth[ring]).mean()
    bad = de(prepare_white_background(img, decontaminate=False).image[ring], truth[ring]).mean()
    assert bad > 3.0 and bad > 3 * good


def test_alpha_channel_is_the_mask(character):
    fg, gt, _ = character
    rgba = np.dstack([np.where(gt[..., None] > 0, fg, 0.3), gt])  # junk colour under transparency
    r = prepare_white_background(rgba)
    assert r.source == "alpha"
    np.testing.assert_array_equal(r.mask, gt)
    np.testing.assert_allclose(r.image, composite(fg, gt, (1, 1, 1)), atol=1e-6)
    # uint8 RGBA and a PIL RGBA image give the same
    u8 = (rgba * 255 + 0.5).astype(np.uint8)
    r2 = prepare_white_background(Image.fromarray(u8, "RGBA"))
    assert r2.source == "alpha" and soft_iou(r2.mask, gt) > 0.99


def test_opaque_alpha_falls_back_to_detection(character):
    fg, gt, _ = character
    img = composite(fg, gt, (0.25, 0.62, 0.35))
    r = prepare_white_background(np.dstack([img, np.ones_like(gt)]))
    assert r.source == "auto" and soft_iou(r.mask, gt) >= 0.97


def test_explicit_mask_wins_and_decontaminates(character):
    fg, gt, _ = character
    img = composite(fg, gt, (0.85, 0.3, 0.3))
    r = prepare_white_background(img, gt)
    assert r.source == "mask"
    np.testing.assert_allclose(r.mask, gt)
    ring = (gt > 0) & (gt < 1)
    truth = composite(fg, gt, (1, 1, 1))
    assert de(r.image[ring], truth[ring]).mean() < 1.0
    # behind the edge the background may vary: the local background colour is removed
    yy = np.linspace(0, 1, gt.shape[0], dtype=np.float32)[:, None, None]
    grad = np.broadcast_to(np.float32([0.2, 0.5, 0.9]) * (1 - yy) + np.float32([0.9, 0.6, 0.2]) * yy, fg.shape)
    rg = prepare_white_background(np.clip(fg * gt[..., None] + grad * (1 - gt[..., None]), 0, 1), gt)
    assert de(rg.image[ring], truth[ring]).mean() < 1.0
    # a mask overrides the alpha channel too (the half-box mask keeps only the left half)
    half = np.zeros_like(gt)
    half[:, :128] = 1
    r2 = prepare_white_background(np.dstack([fg, gt]), half)
    assert r2.mask[:, 128:].max() == 0 and np.all(r2.image[:, 128:] == 1.0)


def test_gradient_background_needs_grabcut(character):
    fg, gt, _ = character
    yy = np.linspace(0, 1, 256, dtype=np.float32)[:, None, None]
    bg = np.float32([0.55, 0.7, 0.9]) * (1 - yy) + np.float32([0.95, 0.85, 0.7]) * yy
    bg = np.broadcast_to(bg, fg.shape) + np.random.default_rng(0).normal(0, 0.008, fg.shape).astype(np.float32)
    img = np.clip(fg * gt[..., None] + bg * (1 - gt[..., None]), 0, 1)
    plain = prepare_white_background(img)
    refined = prepare_white_background(img, grabcut=True)
    assert refined.source == "auto+grabcut"
    assert soft_iou(plain.mask, gt) < 0.9  # one flat colour cannot describe a gradient
    assert soft_iou(refined.mask, gt) >= 0.97


def test_grow_feather_and_determinism(character):
    fg, gt, _ = character
    img = composite(fg, gt, (0.62, 0.8, 0.93))
    base = prepare_white_background(img)
    grown = prepare_white_background(img, grow=3)
    shrunk = prepare_white_background(img, grow=-3)
    soft = prepare_white_background(img, feather=2.0)
    assert shrunk.mask.sum() < base.mask.sum() < grown.mask.sum()
    frac = lambda m: ((m > 0.02) & (m < 0.98)).sum()  # noqa: E731
    assert frac(soft.mask) > 2 * frac(base.mask)
    for r in (grown, shrunk, soft):
        assert 0.0 <= r.mask.min() and r.mask.max() <= 1.0 and 0.0 <= r.image.min() and r.image.max() <= 1.0
    again = prepare_white_background(img)
    np.testing.assert_array_equal(again.image, base.image)
    np.testing.assert_array_equal(again.mask, base.mask)


@pytest.mark.parametrize("shape,long_side", [((200, 320), 300), ((320, 200), 512), ((256, 256), 100)])
def test_resize_to_multiples_of_8_keeps_aspect_and_pads_white(shape, long_side):
    h, w = shape
    fg, gt, _ = draw_character(max(h, w))
    fg, gt = fg[:h, :w], gt[:h, :w]
    img = composite(fg, gt, (0.62, 0.8, 0.93))
    r = prepare_white_background(img, long_side=long_side)
    oh, ow = r.mask.shape
    assert oh % 8 == 0 and ow % 8 == 0 and r.image.shape == (oh, ow, 3)
    target = round(long_side / 8) * 8
    assert max(oh, ow) == target
    x0, y0, bw, bh = r.box
    assert abs(bw / bh - w / h) < 0.02
    assert max(bw, bh) == target
    # padding is white with mask 0
    pad = np.ones((oh, ow), bool)
    pad[y0:y0 + bh, x0:x0 + bw] = False
    if pad.any():
        assert np.all(r.image[pad] == 1.0) and np.all(r.mask[pad] == 0.0)


def test_unusual_formats_are_handled(tmp_path, character):
    fg, gt, _ = character
    img = composite(fg, gt, (0.62, 0.8, 0.93))
    # grayscale array -> RGB output
    gray = img.mean(axis=2)
    assert prepare_white_background(gray).image.shape == gray.shape + (3,)
    # 16-bit PNG (Pillow mode I;16) and uint16 RGB arrays
    p16 = tmp_path / "g16.png"
    Image.fromarray((gray * 65535).astype(np.uint16)).save(p16)
    r16 = prepare_white_background(Image.open(p16))
    assert r16.image.shape == gray.shape + (3,)
    r16rgb = prepare_white_background((img * 65535).astype(np.uint16))
    assert soft_iou(r16rgb.mask, gt) >= 0.97
    # palette PNG with a transparent index -> alpha is used
    u8 = (np.dstack([composite(fg, gt, (1, 1, 1)), gt]) * 255).astype(np.uint8)
    pal = Image.fromarray(u8, "RGBA").convert("RGB").quantize(16)
    pal_arr = np.array(pal)
    pal_arr[gt == 0] = 15
    pimg = Image.fromarray(pal_arr, "P")
    pimg.putpalette(pal.getpalette())
    pimg.info["transparency"] = 15
    pp = tmp_path / "pal.png"
    pimg.save(pp, transparency=15)
    rp = prepare_white_background(Image.open(pp))
    assert rp.source == "alpha" and rp.mask[gt == 0].max() == 0.0


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda: np.zeros((0, 10, 3), np.float32), "empty"),
        (lambda: np.zeros((1, 1, 3), np.float32), "at least"),
        (lambda: np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (lambda: np.full((32, 32, 3), np.inf, np.float32), "NaN or infinite"),
        (lambda: np.full((32, 32, 3), 2.0, np.float32), "outside 0..1"),
        (lambda: np.full((32, 32, 3), 0.5, np.float32), "no character"),
        (lambda: np.zeros((32, 32, 4), np.float32), "fully transparent"),
        (lambda: np.zeros((32, 32, 5), np.float32), "channels"),
        (lambda: "not an image", "PIL image or a numpy array"),
    ],
)
def test_bad_images_raise_clear_errors(make, words):
    with pytest.raises(InputError, match=words):
        prepare_white_background(make())


def test_bad_masks_and_options(character):
    fg, gt, _ = character
    img = composite(fg, gt, (0.62, 0.8, 0.93))
    with pytest.raises(InputError, match="resize the mask"):
        prepare_white_background(img, np.ones((10, 10), np.float32))
    with pytest.raises(InputError, match="mask is empty"):
        prepare_white_background(img, np.zeros_like(gt))
    with pytest.raises(InputError, match="unknown prep option"):
        prepare_white_background(img, tolerence=3)
    with pytest.raises(InputError, match="tolerance"):
        prepare_white_background(img, tolerance=-1)
    with pytest.raises(InputError, match="long_side"):
        prepare_white_background(img, long_side=16)


def test_cli_prep_sample_then_analyze(tmp_path, capsys):
    out, mask = tmp_path / "out" / "prepped.png", tmp_path / "out" / "mask.png"
    assert cli_main(["prep", "--sample", "-o", str(out), "--mask-out", str(mask)]) == 0
    img, m = load_image(out), load_image(mask)
    assert img.shape == (512, 512, 3) and m.shape == (512, 512, 1)
    assert 0.1 < m.mean() < 0.6 and img[m[..., 0] == 0].min() == 1.0
    assert "wrote" in capsys.readouterr().out
    assert cli_main(["analyze", str(out), "--mask", str(mask)]) == 0
    assert "Recommended" in capsys.readouterr().out


def test_cli_prep_errors(tmp_path, capsys):
    assert cli_main(["prep", "-o", str(tmp_path / "x.png")]) == 2
    assert "no input" in capsys.readouterr().err
    assert cli_main(["prep", str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_prep_with_mask_file(tmp_path, character):
    fg, gt, _ = character
    src, mfile, out = tmp_path / "in.png", tmp_path / "m.png", tmp_path / "o.png"
    Image.fromarray((composite(fg, gt, (0.85, 0.3, 0.3)) * 255 + 0.5).astype(np.uint8)).save(src)
    Image.fromarray(((1 - gt) * 255 + 0.5).astype(np.uint8)).save(mfile)  # white = background
    assert cli_main(["prep", str(src), "-o", str(out), "--mask", str(mfile), "--invert-mask", "--long-side", "128"]) == 0
    assert load_image(out).shape == (128, 128, 3)


def test_fast_colour_distance_and_border_connectivity_match_references():
    from scipy import ndimage

    from zrealism_core.imaging.colour import rgb_to_lab_fast
    from zrealism_core.imaging.masks import border_connected, near_colour_u8

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 150, 3)).astype(np.uint8)
    lab = rgb_to_lab_fast(img).astype(np.float64)
    for ref, tol in [((60, 10, -20), 12), ((50, 0, 0), 30), ((50, 0, 0), 60), ((90, -5, 5), 0.0)]:
        exact = ((lab - np.array(ref)) ** 2).sum(-1) <= tol**2
        np.testing.assert_array_equal(near_colour_u8(img, ref, tol), exact)
    for p in (0.4, 0.6, 0.8):
        near = rng.random((90, 110)) < p
        labels, _ = ndimage.label(near)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        expect = np.isin(labels, edge[edge > 0])
        for max_fills in (256, 2):  # flood fill, and the labelling fallback for many border regions
            np.testing.assert_array_equal(border_connected(near, max_fills), expect)
