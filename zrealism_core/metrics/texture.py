"""No-reference texture realism: natural-scene statistics (NSS) in the BRISQUE family.

Features (Mittal, Moorthy & Bovik 2012, "No-reference image quality assessment in the spatial
domain", IEEE TIP 21(12)): mean-subtracted contrast-normalised (MSCN) coefficients
I^ = (I - mu) / (sigma + 1) with a 7x7 Gaussian (sigma 7/6); a generalised Gaussian (GGD) fit of
I^ (shape alpha, variance) and asymmetric GGD (AGGD) fits of the four paired products
(horizontal, vertical, two diagonals: shape, mean, left and right variance); at two scales.
That is the 36-dimensional BRISQUE/NIQE feature vector. Moment-matching estimators as in
Sharifi & Leon-Garcia 1995 (GGD) and Lasmar et al. 2009 (AGGD).

Model: NIQE (Mittal, Soundararajan & Bovik 2013, "Making a 'completely blind' image quality
analyzer", IEEE SPL 20(3)). It is opinion-unaware: a multivariate Gaussian (MVG) is fitted to the
features of 96x96 patches of pristine natural photographs, and an image is scored by the distance
between that MVG and the MVG of its own patches,
    D = sqrt((mu_p - mu_t)^T ((S_p + S_t) / 2)^+ (mu_p - mu_t)).
Our pristine photos are the natural-scene images shipped inside the scikit-image wheel
(listed in PRISTINE_IMAGES, fit in `fit_pristine_model`, stored in nss_model.py so run time needs
no data files); the official NIQE parameters are not in any wheel. Photos sit near the model,
flat anime fills, line art, JPEG blocking and "plastic" over-smoothing far from it.

Guards: (1) patches with no texture at all (mean local std < 1 grey level) are counted, not fitted,
and the score is multiplied by the textured fraction; (2) a Laplacian-variance blur floor
(Pech-Pacheco et al. 2000). Laplacian variance is *only* a blur floor: line art has a huge one.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import cv2
import numpy as np
from scipy.special import gamma as _gamma

from .calibration import (
    BLUR_LAPVAR_FLOOR,
    TEXTURE_DIST_BAD,
    TEXTURE_DIST_GOOD,
    TEXTURE_FLAT_STD,
    TEXTURE_PATCH,
    ramp,
    scale_for,
)

# Natural-scene photos inside the scikit-image wheel used as the pristine corpus. "coffee" is held
# out on purpose: the tests use it as an unseen photo.
PRISTINE_IMAGES = ("astronaut", "chelsea", "rocket", "brick", "grass", "gravel", "camera")

_ALPHAS = np.arange(0.2, 10.0005, 0.001)
_G1, _G2, _G3 = _gamma(1.0 / _ALPHAS), _gamma(2.0 / _ALPHAS), _gamma(3.0 / _ALPHAS)
_R_GGD = _G1 * _G3 / _G2**2  # E[x^2] / E[|x|]^2 as a function of the GGD shape (decreasing)
_R_AGGD = _G2**2 / (_G1 * _G3)  # its reciprocal, as used by the AGGD estimator (increasing)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
_EPS = 1e-12


def gray255(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb * 255.0
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) * 255.0


def mscn(gray: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(MSCN coefficients, local std map) of a 0..255 gray image."""
    g = gray.astype(np.float64)
    mu = cv2.GaussianBlur(g, (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_REPLICATE)
    var = cv2.GaussianBlur(g * g, (7, 7), 7.0 / 6.0, borderType=cv2.BORDER_REPLICATE) - mu * mu
    sigma = np.sqrt(np.abs(var))
    return (g - mu) / (sigma + 1.0), sigma


def _lookup(table: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Shape parameter whose moment ratio is closest to each value (grid 0.2..10 step 0.001)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(table)
    t = table[order]
    idx = np.clip(np.searchsorted(t, v), 1, len(t) - 1)
    pick = np.where(np.abs(t[idx - 1] - v) <= np.abs(t[idx] - v), idx - 1, idx)
    return _ALPHAS[order[pick]]


def ggd_fit(blocks: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """GGD (shape alpha, variance) per block; `blocks` is (N, n) samples."""
    s2 = (blocks**2).mean(axis=1)
    ea = np.abs(blocks).mean(axis=1)
    rho = s2 / np.maximum(ea**2, _EPS)
    return _lookup(_R_GGD, rho), s2


def aggd_fit(blocks: np.ndarray) -> np.ndarray:
    """AGGD (shape, mean eta, left variance, right variance) per block, (N, 4)."""
    neg = blocks < 0
    pos = blocks > 0
    nl = np.maximum(neg.sum(axis=1), 1)
    nr = np.maximum(pos.sum(axis=1), 1)
    lvar = (np.where(neg, blocks, 0.0) ** 2).sum(axis=1) / nl
    rvar = (np.where(pos, blocks, 0.0) ** 2).sum(axis=1) / nr
    ls, rs = np.sqrt(lvar), np.sqrt(rvar)
    gh = ls / np.maximum(rs, _EPS)
    rhat = np.abs(blocks).mean(axis=1) ** 2 / np.maximum((blocks**2).mean(axis=1), _EPS)
    rnorm = rhat * (gh**3 + 1.0) * (gh + 1.0) / (gh**2 + 1.0) ** 2
    alpha = _lookup(_R_AGGD, rnorm)
    k = np.sqrt(_gamma(1.0 / alpha) / _gamma(3.0 / alpha))
    eta = (rs * k - ls * k) * _gamma(2.0 / alpha) / _gamma(1.0 / alpha)
    return np.stack([alpha, eta, lvar, rvar], axis=1)


def _blocks(arr: np.ndarray, p: int, ny: int, nx: int) -> np.ndarray:
    """(ny*nx, p*p) non-overlapping p x p blocks of the top-left ny*p x nx*p part."""
    a = arr[: ny * p, : nx * p]
    return a.reshape(ny, p, nx, p).transpose(0, 2, 1, 3).reshape(ny * nx, p * p)


def _paired(m: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Product of each MSCN coefficient with its neighbour at (dy, dx); edges replicated."""
    shifted = np.roll(m, (-dy, -dx), axis=(0, 1))
    if dy:
        shifted[-dy:, :] = m[-dy:, :]
    if dx > 0:
        shifted[:, -dx:] = m[:, -dx:]
    elif dx < 0:
        shifted[:, :-dx] = m[:, :-dx]
    return m * shifted


def patch_features(gray: np.ndarray, patch: int) -> Tuple[np.ndarray, np.ndarray]:
    """36 NSS features per non-overlapping patch, and each patch's sharpness (mean local std)."""
    h, w = gray.shape
    ny, nx = h // patch, w // patch
    if ny == 0 or nx == 0:
        return np.zeros((0, 36)), np.zeros(0)
    feats = []
    g = gray
    sharp = None
    for scale in range(2):
        p = patch // (2**scale)
        m, sigma = mscn(g)
        if scale == 0:
            sharp = _blocks(sigma, p, ny, nx).mean(axis=1)
        a, s2 = ggd_fit(_blocks(m, p, ny, nx))
        feats += [a[:, None], s2[:, None]]
        for dy, dx in _SHIFTS:
            feats.append(aggd_fit(_blocks(_paired(m, dy, dx), p, ny, nx)))
        # BRISQUE/NIQE second scale: bicubic downsample by 2.
        g = cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_CUBIC)
    return np.concatenate(feats, axis=1), sharp


def patch_size_for(shape: tuple) -> int:
    return int(np.clip(round(TEXTURE_PATCH * scale_for(shape)), 16, TEXTURE_PATCH))


# ---------------------------------------------------------------- pristine model

def fit_pristine_model(images: Iterable[np.ndarray], patch: int = TEXTURE_PATCH) -> Tuple[np.ndarray, np.ndarray]:
    """MVG (mean 36, covariance 36x36) of the patch features of pristine photos.

    Each photo is centre-cropped to 512x512; as in NIQE, low-sharpness patches are not
    representative of the pristine statistics and are dropped (here: the least sharp quarter).
    """
    rows = []
    for img in images:
        g = gray255(img) if img.dtype != np.uint8 else gray255(img.astype(np.float64) / 255.0)
        h, w = g.shape
        s = min(h, w, 512)
        g = g[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        f, sharp = patch_features(np.ascontiguousarray(g), patch)
        rows.append(f[sharp >= np.quantile(sharp, 0.25)])
    x = np.concatenate(rows, axis=0)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def pristine_images() -> list:
    from skimage import data

    out = []
    for name in PRISTINE_IMAGES:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(img[..., :3])
    return out


_MODEL: Optional[Tuple[np.ndarray, np.ndarray]] = None


def pristine_model() -> Tuple[np.ndarray, np.ndarray]:
    global _MODEL
    if _MODEL is None:
        from .nss_model import COV, MU

        _MODEL = (np.asarray(MU, dtype=np.float64), np.asarray(COV, dtype=np.float64))
    return _MODEL


def niqe_distance(features: np.ndarray, model: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> float:
    mu_p, cov_p = pristine_model() if model is None else model
    mu_t = features.mean(axis=0)
    cov_t = np.cov(features, rowvar=False) if len(features) > 1 else np.zeros_like(cov_p)
    d = mu_p - mu_t
    return float(np.sqrt(max(d @ np.linalg.pinv(0.5 * (cov_p + cov_t)) @ d, 0.0)))


# ---------------------------------------------------------------- score

def _bbox(mask: np.ndarray) -> Tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def texture_realism(rgb: np.ndarray, mask: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Realism score in 0..1 of the character region (no reference) with its parts."""
    gray = gray255(rgb)
    notes = []
    region = None if mask is None else np.asarray(mask) > 0.5
    if region is not None and region.any():
        ys, xs = _bbox(region)
        crop, crop_region = gray[ys, xs], region[ys, xs]
    else:
        crop, crop_region = gray, np.ones(gray.shape, dtype=bool)
    patch = min(patch_size_for(gray.shape), min(crop.shape) // 2 * 2)
    if patch < 16:
        notes.append("character region too small for texture statistics; used the whole image")
        crop, crop_region = gray, np.ones(gray.shape, dtype=bool)
        patch = min(patch_size_for(gray.shape), min(crop.shape) // 2 * 2)
    if patch < 16:
        return {"score": 0.0, "nss_distance": float("nan"), "nss_score": 0.0, "textured_fraction": 0.0,
                "laplacian_variance": 0.0, "blur_guard": 0.0, "patches": 0, "patch_px": int(patch),
                "notes": notes + ["image smaller than 16 px: texture realism set to 0"]}
    feats, sharp = patch_features(np.ascontiguousarray(crop), patch)
    ny, nx = crop.shape[0] // patch, crop.shape[1] // patch
    coverage = _blocks(crop_region.astype(np.float64), patch, ny, nx).mean(axis=1)
    inside = coverage >= 0.75
    if not inside.any():  # thin character: take the patches it covers most
        inside = coverage >= min(0.75, coverage.max()) - 1e-9
    textured = inside & (sharp >= TEXTURE_FLAT_STD)
    n_in, n_tex = int(inside.sum()), int(textured.sum())
    textured_fraction = n_tex / max(n_in, 1)
    if n_tex:
        dist = niqe_distance(feats[textured])
        nss = ramp(dist, TEXTURE_DIST_GOOD, TEXTURE_DIST_BAD)
    else:
        dist, nss = float("nan"), 0.0
        notes.append("no textured patch on the character (flat fills only)")
    # Blur floor on the character's own pixels.
    lap = cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=3, borderType=cv2.BORDER_REPLICATE)
    lapvar = float(lap[crop_region].var()) if crop_region.any() else 0.0
    guard = min(1.0, lapvar / BLUR_LAPVAR_FLOOR)
    if guard < 1.0:
        notes.append(f"blurry: Laplacian variance {lapvar:.1f} < {BLUR_LAPVAR_FLOOR:g}")
    return {
        "score": float(np.clip(nss * textured_fraction * guard, 0.0, 1.0)),
        "nss_distance": dist,
        "nss_score": nss,
        "textured_fraction": float(textured_fraction),
        "laplacian_variance": lapvar,
        "blur_guard": float(guard),
        "patches": n_in,
        "patch_px": int(patch),
        "notes": notes,
    }


def write_model_module(path: Optional[str] = None) -> str:
    """Refit the pristine MVG and write nss_model.py (run: python -m zrealism_core.metrics.texture)."""
    import os

    mu, cov = fit_pristine_model(pristine_images())
    path = path or os.path.join(os.path.dirname(__file__), "nss_model.py")
    lines = [
        '"""Pristine natural-scene MVG for texture.py (generated by `python -m zrealism_core.metrics.texture`;',
        f"do not edit). Fitted on the scikit-image photos {', '.join(PRISTINE_IMAGES)}:",
        f"512x512 centre crops, {TEXTURE_PATCH}x{TEXTURE_PATCH} patches, least sharp quarter dropped, 36 BRISQUE features.",
        '"""',
        "MU = [" + ", ".join(f"{v:.10g}" for v in mu) + "]",
        "COV = [",
    ]
    lines += ["    [" + ", ".join(f"{v:.10g}" for v in row) + "]," for row in cov]
    lines.append("]")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover
    print(write_model_module())
