"""Control-map detector costs with random weights of the real architectures (no download).

    python -m benchmarks.bench_maps [WORKDIR] [--device cpu|cuda] [--reps 3] [--only depth_anything,midas,openpose]

Writes full-size random annotator files (~1 GB) into WORKDIR (default benchmarks/_cache/maps, once), then for
each detector: load time, first 512x512 detection and the median of --reps further detections, through
zrealism_core.control.maps.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _prepare_files(root: Path) -> None:
    from zrealism_core.testing import tiny_annotators as ta

    if not (root / "Depth-Anything-V2-Small-hf").is_dir():
        ta.write_depth_anything_v2_small(root)
    ann = root / "lllyasviel" / "Annotators"
    if not (ann / "facenet.pth").is_file() or os.environ.get("ZR_REWRITE_OPENPOSE"):
        ta.write_openpose_files(ann, compact=False)
    if not (ann / "dpt_hybrid-midas-501f0c75.pt").is_file():
        ta.write_midas_file(ann, compact=False)


def _image() -> np.ndarray:
    try:
        from skimage.data import astronaut

        return astronaut()  # 512x512 RGB
    except Exception:
        return (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)


def _load_only(name: str, root: Path, device: str) -> None:
    """File loading + model construction of one detector, without a detection."""
    from zrealism_core.control import maps as cm
    from zrealism_core.models import depth_anything, detectors

    dev = cm._device_name(device)
    if name == "openpose":
        detectors.load_openpose(cm.annotators.locate_openpose([root]), dev)
    elif name == "midas":
        detectors.load_midas(cm.annotators.locate_depth("midas", [root])[1], dev)
    else:
        depth_anything.load_folder(cm.annotators.locate_depth("depth_anything", [root])[1], dev)


def bench_detector(name: str, img: np.ndarray, root: Path, device: str, reps: int) -> dict:
    from zrealism_core.control import maps as cm
    from zrealism_core.models import detectors

    def detect() -> np.ndarray:
        if name == "openpose":
            return cm.pose_map(img, annotator_dirs=[root], resolution=512, device=device)
        return cm.depth_map(img, method=name, annotator_dirs=[root], resolution=512, device=device)

    detectors.unload_detectors()
    t0 = time.perf_counter()
    _load_only(name, root, device)
    load = time.perf_counter() - t0
    detectors.unload_detectors()
    t0 = time.perf_counter()
    out = detect()
    _sync(device)
    first = time.perf_counter() - t0  # load + detect
    times, cpu = [], []
    for _ in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = detect()
        _sync(device)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"load_s": round(load, 2), "first_call_incl_load_s": round(first, 2),
            "detect_median_s": round(statistics.median(times), 3), "detect_all_s": [round(x, 3) for x in times],
            "detect_cpu_s": [round(x, 2) for x in cpu], "loadavg": os.getloadavg()[0], "out_shape": list(out.shape)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", nargs="?", default=str(HERE / "_cache" / "maps"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="depth_anything,midas,openpose")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    root = Path(args.workdir)
    t = time.perf_counter()
    _prepare_files(root)
    print("files ready in %.1f s" % (time.perf_counter() - t), flush=True)
    img = _image()
    # import everything first, so load_s is file loading + model construction only
    import controlnet_aux  # noqa: F401  (imported for its import cost only)
    import transformers.models.depth_anything  # noqa: F401

    res = {"device": args.device, "torch_threads": torch.get_num_threads(), "image": list(img.shape)}
    for name in args.only.split(","):
        res[name] = bench_detector(name, img, root, args.device, args.reps)
        print(name, json.dumps(res[name]), flush=True)
    res["loadavg_after"] = os.getloadavg()
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
