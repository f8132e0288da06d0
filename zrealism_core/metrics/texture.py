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
no data files); the official NIQE parameters are not in any wheel. The pristine covariance is
Ledoit-Wolf shrunk (~110 patches for 36 features). Photos sit near the model, flat anime fills,
line art, JPEG blocking and "plastic" over-smoothing far from it.

Guards (multiplied into the score; anchors and their data in calibration.py): (1) patches with no
texture at all (mean local std < 0.3 grey level) are counted, not fitted: the textured fraction;
(2) the flat guard: the share of pixels on exact plateaus (3x3 neighbourhood within one 8-bit code
value). A photo, however smooth, keeps sensor noise and fine gradients; a cartoon's fills are flat
and meet at hard steps. The NSS features alone missed this on smooth, low-contrast photos (issue 22);
(3) the detail guard: the finest octave's energy over the next one's (a ~1/f^2 natural image has
about equal energy per octave; blur and upscaling empty the finest), free of contrast;
(4) a Laplacian-variance blur floor (Pech-Pacheco et al. 2000). Laplacian variance is *only* a blur
floor: line art and a cartoon's hard steps have a huge one.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

import cv2
import numpy as np
from scipy.special import gamma as _gamma

from .calibration import (
    BLUR_LAPVAR_FLOOR,
    TEXTURE_DETAIL_BAD,
    TEXTURE_DETAIL_GOOD,
    TEXTURE_DIST_BAD,
    TEXTURE_DIST_GOOD,
    TEXTURE_FLAT_STD,
    TEXTURE_PATCH,
    TEXTURE_PLATEAU_BAD,
    TEXTURE_PLATEAU_GOOD,
    TEXTURE_PLATEAU_RANGE,
    ramp,
    scale_for,
)

# Natural-scene photos inside the scikit-image wheel used as the pristine corpus. The other photos
# choose the anchors or are held out (calibration.TEXTURE_ANCHOR_PHOTOS / _HELD_OUT_PHOTOS); "coffee"
# is an anchor photo, never fitted: the tests use it as an unseen photo.
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
    The covariance is shrunk (`shrunk_covariance`) so that it generalises past these photos.
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
    return x.mean(axis=0), shrunk_covariance(x)[0]


def shrunk_covariance(x: np.ndarray) -> Tuple[np.ndarray, float]:
    """(covariance, shrinkage intensity) of the rows of x: Ledoit & Wolf 2004 ("A well-conditioned
    estimator for large-dimensional covariance matrices", J. Multivariate Anal. 88(2)) applied to
    the standardised features, i.e. the correlation matrix is shrunk towards the identity (the
    covariance towards its own diagonal) by the intensity that minimises the expected Frobenius
    loss. ~130 patches for 36 correlated features leave the plain sample covariance nearly
    singular: its smallest directions fit the 7 pristine photos themselves, so an unseen photo
    that differs from them along one of those directions looked as far away as a cartoon."""
    n, p = x.shape
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - x.mean(axis=0)) / sd
    s = z.T @ z / n
    d2 = float(((s - np.eye(p)) ** 2).sum())
    b2 = float(((z[:, :, None] * z[:, None, :] - s) ** 2).sum()) / n**2
    lam = 1.0 if d2 <= 0 else min(b2, d2) / d2
    return ((1.0 - lam) * s + lam * np.eye(p)) * np.outer(sd, sd), lam


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

def plateau_fraction(gray: np.ndarray, region: Optional[np.ndarray] = None) -> float:
    """Share of the pixels (of `region`) whose 3x3 neighbourhood spans less than
    TEXTURE_PLATEAU_RANGE grey levels (0..255): exactly flat at 8-bit precision."""
    g = np.asarray(gray, dtype=np.float32)
    k = np.ones((3, 3), np.uint8)
    flat = (cv2.dilate(g, k) - cv2.erode(g, k)) < TEXTURE_PLATEAU_RANGE
    if region is None:
        return float(flat.mean())
    return float(flat[region].mean()) if region.any() else 0.0


def detail_ratio(gray: np.ndarray, region: Optional[np.ndarray] = None) -> float:
    """Energy of the finest octave over the next one: var(g - G1 g) / var(G1 g - G2 g), Gi a
    Gaussian of sigma i px. Natural images have a ~1/f^2 power spectrum (Field 1987; Ruderman
    1994), about the same energy in every octave, so a photo's ratio is near 1 at any contrast or
    resolution; a blur empties the finest octave first (sigma 2: ~0.2; the limit of heavy blur is
    1/9), and so does an image scaled up by 2x or more."""
    g = np.asarray(gray, dtype=np.float32)
    g1 = cv2.GaussianBlur(g, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    g2 = cv2.GaussianBlur(g, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)
    fine, next_ = (g - g1) ** 2, (g1 - g2) ** 2
    if region is not None and region.any():
        fine, next_ = fine[region], next_[region]
    e_next = float(next_.mean())
    return float(fine.mean()) / e_next if e_next > 1e-12 else 0.0


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
                "plateau_fraction": 0.0, "flat_guard": 0.0, "detail_ratio": 0.0, "detail_guard": 0.0,
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
    # Flat plateaus: a cartoon's fills are exactly flat, a photo's sensor noise and fine gradients
    # move every 3x3 neighbourhood by at least one 8-bit code value.
    plateau = plateau_fraction(crop, crop_region)
    flat_guard = ramp(plateau, TEXTURE_PLATEAU_GOOD, TEXTURE_PLATEAU_BAD)
    if flat_guard < 1.0:
        notes.append(f"flat plateaus: {plateau:.0%} of the pixels have a 3x3 neighbourhood flat to "
                     f"{TEXTURE_PLATEAU_RANGE:g} grey level (photos <= {TEXTURE_PLATEAU_GOOD:.0%})")
    # Fine detail: the finest octave's share of the energy (blur and upscaling empty it).
    detail = detail_ratio(crop, crop_region)
    detail_guard = ramp(detail, TEXTURE_DETAIL_GOOD, TEXTURE_DETAIL_BAD)
    if detail_guard < 1.0:
        notes.append(f"little fine detail: finest-octave energy ratio {detail:.2f} < {TEXTURE_DETAIL_GOOD:g} "
                     "(blurred or scaled up)")
    # Blur floor on the character's own pixels.
    lap = cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=3, borderType=cv2.BORDER_REPLICATE)
    lapvar = float(lap[crop_region].var()) if crop_region.any() else 0.0
    guard = min(1.0, lapvar / BLUR_LAPVAR_FLOOR)
    if guard < 1.0:
        notes.append(f"blurry: Laplacian variance {lapvar:.1f} < {BLUR_LAPVAR_FLOOR:g}")
    return {
        "score": float(np.clip(nss * textured_fraction * flat_guard * detail_guard * guard, 0.0, 1.0)),
        "nss_distance": dist,
        "nss_score": nss,
        "textured_fraction": float(textured_fraction),
        "plateau_fraction": plateau,
        "flat_guard": float(flat_guard),
        "detail_ratio": detail,
        "detail_guard": float(detail_guard),
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
        f"512x512 centre crops, {TEXTURE_PATCH}x{TEXTURE_PATCH} patches, least sharp quarter dropped, 36 BRISQUE features,",
        "covariance Ledoit-Wolf shrunk (texture.shrunk_covariance).",
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
