"""Colour science shared by prep, the colour lock and the evaluator.

sRGB (D65) <-> CIELAB, and CIEDE2000 (Sharma, Wu & Dalal 2005; scikit-image's deltaE_ciede2000:
the numpy version we had took 31.7 / 333 ms for 192^2 / 512^2 pixel pairs against scikit-image's
14.5 / 140 ms, python -m benchmarks.bench_colour before the switch, load 5.1), vectorised over arrays.
"""
from __future__ import annotations

import numpy as np

# sRGB primaries to XYZ (D65), IEC 61966-2-1.
_RGB2XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(np.asarray(lin, dtype=np.float64), 0.0, None)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1.0 / 2.4) - 0.055)


# Ours, not skimage's rgb2lab/lab2rgb (2-4x faster, bench_colour): its sRGB matrix does not sum to its white, so white is a -0.002, b +0.005.
def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 (..., 3) -> CIELAB (..., 3), float32. L in 0..100."""
    xyz = srgb_to_linear(rgb) @ _RGB2XYZ.T / _WHITE_D65
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab.astype(np.float32)


def rgb_to_lab_fast(rgb: np.ndarray) -> np.ndarray:
    """Like rgb_to_lab, via OpenCV on 8-bit input: ~50x faster, error up to ~2 LAB units
    (8-bit quantisation and OpenCV's fixed-point tables).

    For masks and image statistics on megapixel images, where rgb_to_lab's float64 maths is the
    bottleneck; use rgb_to_lab where exact values matter (colour-difference scores).
    """
    import cv2

    arr = np.asarray(rgb)
    shape = arr.shape
    flat = np.ascontiguousarray(arr.reshape(-1, 1, 3) if arr.ndim != 3 else arr)
    # convertScaleAbs saturates and rounds to nearest (inputs are >= 0): one pass, no temporaries.
    u8 = flat if flat.dtype == np.uint8 else cv2.convertScaleAbs(flat.astype(np.float32, copy=False), alpha=255.0)
    lab8 = cv2.cvtColor(u8, cv2.COLOR_RGB2Lab)
    # OpenCV 8-bit LAB is (L * 255/100, a + 128, b + 128): undo it in one affine pass.
    return cv2.transform(lab8.astype(np.float32), _LAB8_TO_LAB).reshape(shape)


_LAB8_TO_LAB = np.array([[100.0 / 255.0, 0, 0, 0], [0, 1, 0, -128.0], [0, 0, 1, -128.0]], np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB in 0..1 (clipped), float32."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = np.stack([fx, fy, fz], axis=-1)
    f3 = f**3
    xyz = np.where(f3 > _EPS, f3, (116.0 * f - 16.0) / _KAPPA)
    # L is defined through fy directly below the threshold.
    xyz[..., 1] = np.where(lab[..., 0] > _KAPPA * _EPS, f3[..., 1], lab[..., 0] / _KAPPA)
    lin = (xyz * _WHITE_D65) @ _XYZ2RGB.T
    return np.clip(linear_to_srgb(lin), 0.0, 1.0).astype(np.float32)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference between two LAB arrays of shape (..., 3) (they broadcast)."""
    from skimage.color import deltaE_ciede2000

    # float32: 1.7x faster than float64 and within 5e-5 of Sharma 2005's table (bench_colour)
    return deltaE_ciede2000(np.asarray(lab1, dtype=np.float32), np.asarray(lab2, dtype=np.float32),
                            kL=kL, kC=kC, kH=kH, channel_axis=-1)


def delta_e_rgb(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between two sRGB arrays (..., 3) in 0..1."""
    return ciede2000(rgb_to_lab(rgb1), rgb_to_lab(rgb2))
