"""The bundled sample: an original 2D character drawn by this code (no third-party artwork).

Flat colours, black line art, white eyes with irises and highlights, a white shirt collar (white
*inside* the character, which prep must keep), on a transparent background; or composited onto a
flat colour for the "flat background" variant. Drawn at 4x and area-averaged, so edges are
anti-aliased the way real exported art is. Every demo and the README picture start from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..errors import InputError

# The flat background of the "background" variant: a light sky blue.
DEFAULT_BACKGROUND = (158 / 255.0, 204 / 255.0, 237 / 255.0)

_SKIN = (255, 222, 196)
_HAIR = (236, 128, 52)
_HAIR_DARK = (196, 92, 30)
_JACKET = (58, 108, 200)
_SHIRT = (255, 255, 255)
_SKIRT = (48, 46, 72)
_SHOE = (128, 72, 40)
_SOCK = (250, 250, 250)
_IRIS = (40, 150, 96)
_BLUSH = (250, 172, 172)
_MOUTH = (200, 70, 80)
_INK = (16, 12, 20)


class _Canvas:
    """Supersampled RGB canvas (premultiplied: drawn on black) plus a coverage canvas, and an ink
    canvas: where a stroke or outline is still visible (a later fill paints over it)."""

    def __init__(self, size: int, ss: int) -> None:
        self.n = size * ss
        self.k = self.n / 1000.0  # drawing units: a 1000 x 1000 square
        self.rgb = np.zeros((self.n, self.n, 3), np.uint8)
        self.alpha = np.zeros((self.n, self.n), np.uint8)
        self.ink = np.zeros((self.n, self.n), np.uint8)
        self.line = max(1, int(round(9 * self.k)))  # outline width

    def _pts(self, pts: Sequence[Tuple[float, float]]) -> np.ndarray:
        return (np.asarray(pts, np.float64) * self.k).round().astype(np.int32).reshape(-1, 1, 2)

    def poly(self, pts, fill, outline: bool = True) -> None:
        p = self._pts(pts)
        if outline:
            cv2.polylines(self.rgb, [p], True, _INK, self.line, cv2.LINE_8)
            cv2.polylines(self.alpha, [p], True, 255, self.line, cv2.LINE_8)
            cv2.polylines(self.ink, [p], True, 255, self.line, cv2.LINE_8)
        cv2.fillPoly(self.rgb, [p], fill)
        cv2.fillPoly(self.alpha, [p], 255)
        cv2.fillPoly(self.ink, [p], 0)

    def ellipse(self, center, axes, fill, outline: bool = True, angle: float = 0.0) -> None:
        c = tuple(int(round(v * self.k)) for v in center)
        a = tuple(max(1, int(round(v * self.k))) for v in axes)
        if outline:
            cv2.ellipse(self.rgb, c, a, angle, 0, 360, _INK, self.line)
            cv2.ellipse(self.alpha, c, a, angle, 0, 360, 255, self.line)
            cv2.ellipse(self.ink, c, a, angle, 0, 360, 255, self.line)
        cv2.ellipse(self.rgb, c, a, angle, 0, 360, fill, -1)
        cv2.ellipse(self.alpha, c, a, angle, 0, 360, 255, -1)
        cv2.ellipse(self.ink, c, a, angle, 0, 360, 0, -1)

    def stroke(self, pts, width: float = 9.0, color=_INK) -> None:
        p = self._pts(pts)
        cv2.polylines(self.rgb, [p], False, color, max(1, int(round(width * self.k))), cv2.LINE_8)
        cv2.polylines(self.alpha, [p], False, 255, max(1, int(round(width * self.k))), cv2.LINE_8)
        cv2.polylines(self.ink, [p], False, 255, max(1, int(round(width * self.k))), cv2.LINE_8)

    def arc(self, center, axes, start: float, end: float, width: float = 8.0, color=_INK) -> None:
        c = tuple(int(round(v * self.k)) for v in center)
        a = tuple(max(1, int(round(v * self.k))) for v in axes)
        t = max(1, int(round(width * self.k)))
        cv2.ellipse(self.rgb, c, a, 0, start, end, color, t)
        cv2.ellipse(self.alpha, c, a, 0, start, end, 255, t)
        cv2.ellipse(self.ink, c, a, 0, start, end, 255, t)


def _draw(c: _Canvas) -> None:
    # Back hair (behind everything): a long bob reaching the shoulders.
    c.poly([(318, 250), (330, 150), (400, 92), (500, 72), (600, 92), (670, 150), (682, 250),
            (690, 400), (650, 470), (600, 470), (400, 470), (350, 470), (310, 400)], _HAIR_DARK)
    # Legs with socks, then shoes.
    for x in (438, 562):
        c.poly([(x - 30, 760), (x + 30, 760), (x + 26, 880), (x - 26, 880)], _SKIN)
        c.poly([(x - 27, 860), (x + 27, 860), (x + 25, 925), (x - 25, 925)], _SOCK)
        c.ellipse((x + (8 if x > 500 else -8), 940), (44, 24), _SHOE)
    # Arms: sleeve, forearm, hand (drawn before the torso so the shoulders overlap them).
    for side in (-1, 1):
        sx = 500 + side * 100
        c.poly([(sx, 470), (sx + side * 55, 470), (sx + side * 95, 600), (sx + side * 50, 615)], _JACKET)
        c.poly([(sx + side * 52, 600), (sx + side * 94, 592), (sx + side * 112, 690), (sx + side * 78, 700)], _SKIN)
        c.ellipse((sx + side * 96, 712), (30, 30), _SKIN)
    # Skirt.
    c.poly([(392, 660), (608, 660), (650, 790), (350, 790)], _SKIRT)
    c.stroke([(450, 680), (430, 785)], 6)
    c.stroke([(550, 680), (570, 785)], 6)
    # Torso: jacket with a white V-neck shirt inside (white *inside* the character).
    c.poly([(392, 455), (608, 455), (622, 680), (378, 680)], _JACKET)
    c.poly([(455, 455), (545, 455), (500, 560)], _SHIRT)
    c.stroke([(500, 560), (500, 676)], 6)
    for y in (590, 635):
        c.ellipse((520, y), (8, 8), (250, 210, 80), outline=False)
    # Neck and head.
    c.poly([(472, 405), (528, 405), (530, 462), (470, 462)], _SKIN)
    c.ellipse((500, 285), (150, 160), _SKIN)
    # Ears.
    c.ellipse((352, 300), (20, 32), _SKIN)
    c.ellipse((648, 300), (20, 32), _SKIN)
    # Eyes: white, iris, pupil, highlights.
    for ex in (440, 560):
        c.ellipse((ex, 300), (40, 50), _SHIRT)
        c.ellipse((ex + 2, 310), (25, 36), _IRIS, outline=False)
        c.ellipse((ex + 2, 316), (12, 18), _INK, outline=False)
        c.ellipse((ex - 10, 292), (9, 9), _SHIRT, outline=False)
        c.ellipse((ex + 12, 334), (5, 5), _SHIRT, outline=False)
        c.arc((ex, 300), (44, 54), 200, 340, 12)  # upper lash line
    # Brows, blush, nose, mouth.
    c.stroke([(402, 228), (440, 218), (474, 226)], 7, _HAIR_DARK)
    c.stroke([(526, 226), (560, 218), (598, 228)], 7, _HAIR_DARK)
    c.ellipse((404, 362), (26, 12), _BLUSH, outline=False)
    c.ellipse((596, 362), (26, 12), _BLUSH, outline=False)
    c.stroke([(500, 348), (494, 362), (503, 364)], 5)
    c.ellipse((500, 394), (24, 12), _MOUTH)
    # Front hair: bangs with points over the forehead.
    c.poly([(342, 270), (346, 190), (390, 130), (460, 104), (540, 104), (610, 130), (654, 190),
            (658, 270), (628, 212), (600, 250), (574, 196), (536, 246), (505, 186), (470, 244),
            (436, 194), (404, 250), (374, 208)], _HAIR)
    c.stroke([(420, 140), (470, 122)], 6, (255, 200, 140))  # hair shine


def _drawn(size: int) -> _Canvas:
    if not isinstance(size, (int, np.integer)) or size < 64 or size > 4096:
        raise InputError(f"sample size must be an integer from 64 to 4096; got {size!r}.")
    ss = 4 if size <= 1024 else 2  # supersampling for anti-aliased edges
    canvas = _Canvas(int(size), ss)
    _draw(canvas)
    return canvas


def sample_character(
    size: int = 512, background: Optional[Union[Sequence[float], str]] = None
) -> np.ndarray:
    """The sample character as float32 in 0..1.

    background=None: RGBA H,W,4 on a transparent background (alpha = exact coverage, the ground
    truth for mask tests). background="flat" or an RGB triple in 0..1: RGB H,W,3 composited onto
    that flat colour ("flat" = DEFAULT_BACKGROUND).
    """
    canvas = _drawn(size)
    premult = cv2.resize(canvas.rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    alpha = cv2.resize(canvas.alpha, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    # The canvas was black where nothing was drawn, so area-averaged colour is premultiplied.
    straight = np.where(alpha[..., None] > 0, premult / np.maximum(alpha[..., None], 1e-6), 0.0)
    straight = np.clip(straight, 0.0, 1.0).astype(np.float32)
    if background is None:
        return np.dstack([straight, alpha]).astype(np.float32)
    bg = DEFAULT_BACKGROUND if isinstance(background, str) and background == "flat" else background
    try:
        bg_arr = np.asarray(bg, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        bg_arr = np.zeros(0, np.float32)
    if bg_arr.shape != (3,) or not np.all((bg_arr >= 0) & (bg_arr <= 1)):
        raise InputError(f"background must be None, 'flat' or an RGB triple in 0..1; got {background!r}.")
    a = alpha[..., None]
    return (straight * a + bg_arr * (1.0 - a)).astype(np.float32)


def sample_strokes(size: int = 512) -> np.ndarray:
    """Where the sample's strokes and outlines are visible (H,W bool, the strokes the generator drew
    minus what later fills paint over): the ground truth for the line-art and canny hint tests."""
    canvas = _drawn(size)
    return cv2.resize(canvas.ink, (size, size), interpolation=cv2.INTER_AREA) >= 128


def write_sample(path: Union[str, Path], size: int = 512, background: Optional[Union[Sequence[float], str]] = None) -> Path:
    """Write the sample as a PNG (RGBA when background is None)."""
    from .images import save_image

    return save_image(sample_character(size, background), path)


def pink_noise(n: int, seed: int = 0, beta: float = 1.5) -> np.ndarray:
    """Zero-mean, unit-std n x n noise with a 1/f^beta amplitude spectrum: a natural-image-like
    texture for tests and benchmarks of the realism metrics."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    r = np.hypot(*np.meshgrid(f, f))
    r[0, 0] = 1.0
    im = np.real(np.fft.ifft2((rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / r**beta))
    return ((im - im.mean()) / im.std()).astype(np.float32)
