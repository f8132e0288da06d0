"""Colour science shared by prep, the colour lock and the evaluator.

sRGB (D65) <-> CIELAB, and CIEDE2000 (Sharma, Wu & Dalal 2005), vectorised over arrays.
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
    """CIEDE2000 colour difference between two LAB arrays of shape (..., 3)."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]

    C1 = np.hypot(a1, b1)
    C2 = np.hypot(a2, b2)
    Cbar = 0.5 * (C1 + C2)
    Cbar7 = Cbar**7
    G = 0.5 * (1.0 - np.sqrt(Cbar7 / (Cbar7 + 25.0**7)))
    a1p = (1.0 + G) * a1
    a2p = (1.0 + G) * a2
    C1p = np.hypot(a1p, b1)
    C2p = np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    # Hue is undefined for achromatic colours: the standard sets it to 0.
    h1p = np.where(C1p == 0, 0.0, h1p)
    h2p = np.where(C2p == 0, 0.0, h2p)

    dLp = L2 - L1
    dCp = C2p - C1p
    dh = h2p - h1p
    dhp = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dhp = np.where(C1p * C2p == 0, 0.0, dhp)
    dHp = 2.0 * np.sqrt(C1p * C2p) * np.sin(np.radians(dhp) / 2.0)

    Lbarp = 0.5 * (L1 + L2)
    Cbarp = 0.5 * (C1p + C2p)
    hsum = h1p + h2p
    habs = np.abs(h1p - h2p)
    hbarp = np.where(
        C1p * C2p == 0,
        hsum,
        np.where(habs <= 180.0, 0.5 * hsum, np.where(hsum < 360.0, 0.5 * (hsum + 360.0), 0.5 * (hsum - 360.0))),
    )
    T = (
        1.0
        - 0.17 * np.cos(np.radians(hbarp - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * hbarp))
        + 0.32 * np.cos(np.radians(3.0 * hbarp + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * hbarp - 63.0))
    )
    dtheta = 30.0 * np.exp(-(((hbarp - 275.0) / 25.0) ** 2))
    Cbarp7 = Cbarp**7
    RC = 2.0 * np.sqrt(Cbarp7 / (Cbarp7 + 25.0**7))
    Lm50 = (Lbarp - 50.0) ** 2
    SL = 1.0 + 0.015 * Lm50 / np.sqrt(20.0 + Lm50)
    SC = 1.0 + 0.045 * Cbarp
    SH = 1.0 + 0.015 * Cbarp * T
    RT = -np.sin(np.radians(2.0 * dtheta)) * RC
    tL = dLp / (kL * SL)
    tC = dCp / (kC * SC)
    tH = dHp / (kH * SH)
    return np.sqrt(tL**2 + tC**2 + tH**2 + RT * tC * tH)


def delta_e_rgb(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between two sRGB arrays (..., 3) in 0..1."""
    return ciede2000(rgb_to_lab(rgb1), rgb_to_lab(rgb2))
