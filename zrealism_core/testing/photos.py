"""The photographs that ship with scikit-image, and the two degradations the texture score must rank
below them (issue 22). One definition for tests/test_texture_photos.py and benchmarks/texture_table.py.

Every `skimage.data` loader is listed once: in PHOTOS (a photograph: light recorded by a camera
sensor, also through a telescope, a microscope or a fundus camera, or a scanner), in SKIPPED (with
the reason), or in NEEDS_DOWNLOAD (the loader fetches the file with pooch; we never download).
tests/test_texture_photos.py checks that the three lists cover `skimage.data.__all__`.

Size: the metric is defined at 512 px. A photo with both sides >= 512 is centre-cropped to 512x512
at its own resolution; a smaller one is first scaled up (bicubic) so that its short side is 512.
"""
from __future__ import annotations

from typing import Dict, Tuple

import cv2
import numpy as np

SIZE = 512

# name -> what it is (for the table). motorcycle_left / _right are the two views of stereo_motorcycle.
PHOTOS: Dict[str, str] = {
    "astronaut": "portrait, colour",
    "brick": "brick wall texture, gray",
    "camera": "cameraman, gray",
    "chelsea": "cat close-up, colour (300x451)",
    "clock": "wall clock, camera motion blur, gray (300x400)",
    "coffee": "coffee cup, colour (400x600)",
    "coins": "museum coins, gray (303x384)",
    "grass": "grass texture, gray",
    "gravel": "gravel texture, gray",
    "hubble_deep_field": "Hubble telescope deep field, colour",
    "immunohistochemistry": "stained tissue through a microscope, colour",
    "microaneurysms": "retina fundus detail, green channel (102x102)",
    "moon": "lunar surface, low contrast, gray",
    "motorcycle_left": "Middlebury stereo, left view (500x741)",
    "motorcycle_right": "Middlebury stereo, right view (500x741)",
    "page": "photographed page of print, gray (191x384)",
    "retina": "fundus photograph, colour (1411x1411)",
    "rocket": "rocket launch at dusk, colour (427x640)",
    "text": "handwriting on paper, gray (172x448)",
}

# Not in scikit-image: matplotlib's sample photo (a test dependency), held out like the skimage ones.
EXTRA_PHOTOS: Dict[str, str] = {"grace_hopper": "matplotlib sample_data portrait, colour (600x512)"}

# Loaders that are not one photograph, and why.
SKIPPED: Dict[str, str] = {
    "binary_blobs": "synthetic (random binary blobs)",
    "checkerboard": "synthetic (checkerboard)",
    "colorwheel": "synthetic (colour wheel)",
    "shepp_logan_phantom": "synthetic (CT phantom)",
    "horse": "drawing (clip-art silhouette)",
    "logo": "drawing (the scikit-image logo)",
    "cell": "not a photograph: a quantitative phase map computed from a digital hologram",
    "lfw_subset": "200 thumbnails of 25x25 px (faces and non-faces): a 20x upscale to 512 is only interpolation",
    "cat": "the same picture as chelsea",
    "stereo_motorcycle": "listed as motorcycle_left and motorcycle_right",
    "data_dir": "not a loader",
    "download_all": "not a loader",
    "file_hash": "not a loader",
    "lbp_frontal_face_cascade_filename": "not an image (a cascade classifier file)",
}

# Loaders whose file is not in the wheel (pooch download): not used, we run offline.
NEEDS_DOWNLOAD: Tuple[str, ...] = (
    "brain", "cells3d", "eagle", "human_mitosis", "kidney", "lily", "nickel_solidification",
    "palisades_of_vogt", "protein_transport", "skin", "vortex",
)


def load_raw(name: str) -> np.ndarray:
    """The photo as scikit-image (or matplotlib) ships it, H x W x 3 uint8 (gray repeated)."""
    from skimage import data

    if name == "grace_hopper":
        import matplotlib
        from PIL import Image

        path = f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg"
        return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))
    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = data.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def crop512(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Centre size x size crop as float32 0..1; a short side below `size` is first scaled up (bicubic)."""
    img = np.asarray(img)[..., :3]
    x = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    h, w = x.shape[:2]
    if min(h, w) < size:
        s = size / min(h, w)
        x = cv2.resize(x, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_CUBIC)
        h, w = x.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(np.clip(x[y0 : y0 + size, x0 : x0 + size], 0.0, 1.0))


def pixel_replication(img: np.ndarray) -> float:
    """Share of the aligned 2x2 blocks whose four pixels are equal: 1.0 for an image that was scaled
    up 2x by pixel replication (nearest neighbour) before it shipped; photos measure 0-0.3."""
    g = np.asarray(img)[..., 1] if np.asarray(img).ndim == 3 else np.asarray(img)
    h, w = g.shape[0] // 2 * 2, g.shape[1] // 2 * 2
    b = g[:h, :w].reshape(h // 2, 2, w // 2, 2)
    return float((b.max(axis=(1, 3)) == b.min(axis=(1, 3))).mean())


def effective_upscale(name: str, size: int = SIZE) -> float:
    """How much the 512 crop is scaled up from the photo's own pixels: our bicubic upscale of a short
    side below 512, times 2 for an image that shipped pixel-replicated. At 2x or more, the finest of
    the two NSS scales holds no detail of the scene: such a crop is out of distribution."""
    raw = load_raw(name)
    ours = max(1.0, size / min(raw.shape[:2]))
    return ours * (2.0 if pixel_replication(raw) > 0.99 else 1.0)


def photo(name: str) -> np.ndarray:
    return crop512(load_raw(name))


def blurred(img: np.ndarray) -> np.ndarray:
    """The blur condition: Gaussian, sigma 2 px at 512 (OpenCV's default reflected border)."""
    return cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), 2.0)


def cartoonised(img: np.ndarray) -> np.ndarray:
    """The cartoon condition (issue 22): one edge-keeping bilateral filter (9 px, sigma colour 0.3 on
    0..1, sigma space 75), then k-means to 8 colours in CIELAB (the evaluator's deterministic
    k-means on a subsample, then every pixel set to its nearest centre)."""
    from ..imaging.colour import lab_to_rgb, rgb_to_lab
    from ..metrics.colour_fidelity import nearest_centre, kmeans_lab

    smooth = cv2.bilateralFilter(np.asarray(img, np.float32), 9, 0.3, 75)
    lab = rgb_to_lab(smooth).reshape(-1, 3).astype(np.float64)
    centres, _ = kmeans_lab(lab, 8)
    flat = centres[nearest_centre(lab, centres)].reshape(smooth.shape)
    return np.clip(lab_to_rgb(flat.astype(np.float32)), 0.0, 1.0).astype(np.float32)
