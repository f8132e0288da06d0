"""texture_realism on every scikit-image photograph, its blurred copy and its cartoonised copy.

    python -m benchmarks.texture_table [--detail]

The photos, the 512x512 crop, the blur (Gaussian sigma 2) and the cartoon (bilateral filter, then
k-means to 8 colours) are defined once in zrealism_core/testing/photos.py, which
tests/test_texture_photos.py uses too. The role column says what each photo did in the calibration
(zrealism_core/metrics/calibration.py): "fit" = in the pristine NSS model, "anchor" = chose the
anchors, "held out" = used by neither; "OOD" = held out and out of distribution (see calibration.py).
Also printed: matplotlib's grace_hopper.jpg (held out), when matplotlib is installed, and the
bundled sample (the drawing, and the test suite's stand-in photoreal result). --detail adds each
image's NSS distance, plateau fraction, finest-octave ratio and Laplacian variance, and for the OOD
photos their score at their own resolution.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2
import numpy as np

from zrealism_core.metrics import calibration, texture
from zrealism_core.testing import photos


def _role(name: str) -> str:
    if name in texture.PRISTINE_IMAGES:
        return "fit"
    if name in calibration.TEXTURE_ANCHOR_PHOTOS:
        return "anchor"
    return "OOD" if name in calibration.TEXTURE_OOD_PHOTOS else "held out"


def _row(name: str, img: np.ndarray, role: str, detail: bool) -> tuple:
    """(table line, photo > blur and photo > cartoon)."""
    r = [texture.texture_realism(x) for x in (img, photos.blurred(img), photos.cartoonised(img))]
    s = [x["score"] for x in r]
    ok = s[0] > s[1] and s[0] > s[2]
    line = f"{name:22s} {role:9s} {s[0]:6.3f} {s[1]:6.3f} {s[2]:8.3f}   {'ok' if ok else 'FAIL'}"
    if detail:
        line += "   " + "  ".join(f"d {x['nss_distance']:4.1f} flat {x['plateau_fraction']:.2f} "
                                  f"octave {x['detail_ratio']:.2f} lapvar {x['laplacian_variance']:7.1f}" for x in r)
        if role == "OOD":  # the same photo at its own resolution (moon: its 256x256 original)
            raw = photos.load_raw(name)
            raw = raw[::2, ::2] if photos.pixel_replication(raw) > 0.99 else raw
            native = texture.texture_realism(np.ascontiguousarray(raw, dtype=np.float32) / 255.0)["score"]
            line += f"   [{photos.effective_upscale(name):.1f}x upscale; {native:.3f} at {raw.shape[1]}x{raw.shape[0]}]"
    return line, ok


def _sample_rows() -> list:
    """texture_realism as the evaluator reports it (evaluate(drawing, x): the character only, mask
    eroded), and on the whole frame (white background included) for comparison."""
    from zrealism_core.evaluation import evaluate
    from zrealism_core.imaging.sample import pink_noise, sample_character

    out = []
    for size in (512, 192):
        drawing = sample_character(size, (1.0, 1.0, 1.0))
        mask = sample_character(size)[..., 3:] > 0.5
        # The stand-in photoreal result of tests/test_evaluate.py.
        tex = 1.0 + 0.10 * pink_noise(size, 0, 1.5)[..., None] + 0.02 * pink_noise(size, 1, 0.8)[..., None]
        result = np.clip(np.where(mask, cv2.GaussianBlur(drawing, (0, 0), 0.7) * tex, drawing), 0, 1).astype(np.float32)
        for label, img in (("drawing", drawing), ("stand-in result", result)):
            t = evaluate(drawing, img).diagnostics["texture"]
            whole = texture.texture_realism(img)["score"]
            out.append(f"sample {size}px {label:16s} evaluator score {t['score']:.3f} (distance {t['nss_distance']:.1f}, "
                       f"flat {t['plateau_fraction']:.2f}, octave {t['detail_ratio']:.2f}); whole frame {whole:.3f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detail", action="store_true", help="also print distance, flat fraction and Laplacian variance")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"{'photo':22s} {'role':9s} {'photo':>6s} {'blur':>6s} {'cartoon':>8s}   photo > both")
    names = sorted(photos.PHOTOS)
    try:
        import matplotlib  # noqa: F401  (grace_hopper.jpg ships with it)

        names += sorted(photos.EXTRA_PHOTOS)
    except ImportError:
        print("matplotlib not installed: grace_hopper skipped")
    fails = 0
    for name in names:
        line, ok = _row(name, photos.photo(name), _role(name), args.detail)
        fails += not ok
        print(line)
    print("skipped:", "; ".join(f"{k}: {v}" for k, v in sorted(photos.SKIPPED.items())))
    print("not in the wheel (pooch download, not used):", ", ".join(photos.NEEDS_DOWNLOAD))
    for line in _sample_rows():
        print(line)
    print(f"{len(names)} photos, {fails} with photo <= blur or cartoon; {time.perf_counter() - t0:.1f} s, "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
