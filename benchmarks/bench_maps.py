"""Control-map detector costs with random weights of the real architectures (no download).

python benchmarks/bench_maps.py [WORKDIR] [--device cpu|cuda] [--reps 3]
Writes full-size random annotator files (~1 GB) into WORKDIR (default benchmarks/_cache/maps, once), then for each detector: load time,
first 512x512 detection and the median of --reps further detections, through zrealism_core.control_maps.
"""
import argparse, json, os, statistics, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import warnings; warnings.filterwarnings("ignore")
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("workdir", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cache", "maps")); ap.add_argument("--device", default="cpu"); ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--only", default="depth_anything,midas,openpose")
a = ap.parse_args()
from zrealism_core import control_maps as cm
from zrealism_core.testing import tiny_annotators as ta
import torch
root = a.workdir
t = time.perf_counter()
if not os.path.isdir(os.path.join(root, "Depth-Anything-V2-Small-hf")):
    ta.write_depth_anything_v2_small(root)
ann = os.path.join(root, "lllyasviel", "Annotators")
if not os.path.isfile(os.path.join(ann, "facenet.pth")) or os.environ.get("ZR_REWRITE_OPENPOSE"):
    ta.write_openpose_files(ann, compact=False)
if not os.path.isfile(os.path.join(ann, "dpt_hybrid-midas-501f0c75.pt")):
    ta.write_midas_file(ann, compact=False)
print("files ready in %.1f s" % (time.perf_counter() - t), flush=True)
try:
    from skimage.data import astronaut
    img = astronaut()  # 512x512 RGB
except Exception:
    img = (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)
# import everything first, so load_s below is file loading + model construction only
from transformers import DepthAnythingForDepthEstimation, DPTImageProcessor  # noqa: F401
import controlnet_aux  # noqa: F401
res = {"device": a.device, "torch_threads": torch.get_num_threads(), "image": list(img.shape)}
def sync():
    if a.device.startswith("cuda"): torch.cuda.synchronize()
for name in a.only.split(","):
    cm.unload_detectors()
    fn = (lambda: cm.pose_map(img, annotator_dirs=[root], resolution=512, device=a.device)) if name == "openpose" else \
         (lambda: cm.depth_map(img, method=name, annotator_dirs=[root], resolution=512, device=a.device))
    # load = first call minus a steady-state call; measure load separately through the cache
    t0 = time.perf_counter()
    if name == "openpose":
        files = cm.annotators.locate_openpose([root]); cm._load_openpose(files, cm._device_name(a.device))
    elif name == "midas":
        _, p = cm.annotators.locate_depth("midas", [root]); cm._load_midas(p, cm._device_name(a.device))
    else:
        _, p = cm.annotators.locate_depth("depth_anything", [root]); cm._load_depth_anything(p, cm._device_name(a.device))
    load = time.perf_counter() - t0
    cm.unload_detectors()
    t0 = time.perf_counter(); out = fn(); sync(); first = time.perf_counter() - t0  # load + detect
    times, cpu = [], []
    for _ in range(a.reps):
        c0 = time.process_time(); t0 = time.perf_counter(); out = fn(); sync(); times.append(time.perf_counter() - t0); cpu.append(time.process_time() - c0)
    res[name] = {"load_s": round(load, 2), "first_call_incl_load_s": round(first, 2),
                 "detect_median_s": round(statistics.median(times), 3), "detect_all_s": [round(x, 3) for x in times], "detect_cpu_s": [round(x, 2) for x in cpu], "loadavg": os.getloadavg()[0],
                 "out_shape": list(out.shape)}
    print(name, json.dumps(res[name]), flush=True)
res["loadavg_after"] = os.getloadavg()
print(json.dumps(res))
