"""Our still graph against ComfyUI's own native dual-ControlNet graph on one real ComfyUI server (issue 20).

Both graphs run the same work on the same weights: the full SD1.5 architecture with random weights (one
original-layout checkpoint and two ControlNets, depth + OpenPose, written once into the server's checkpoints/
and controlnet/ folders; ComfyUI's CheckpointLoaderSimple + ControlNetLoader and our Model Loader load the
same files), the same drawing and the same depth and pose maps given as images (no detection on either side),
the same prompt, euler, CFG 7, both nets at 0.7 over the whole schedule, `--steps` x `--denoise` (img2img runs
int(steps x denoise) steps: KSampler gets that many steps at the same denoise, so both sides evaluate the UNet
the same number of times on the same part of the schedule). The graphs are the shipped API graphs
(workflows/api/zrealism_still.json and zrealism_still_native.json) with prep, analyzer, Control Maps, LoRA and
evaluator nodes stripped.

Timing: warm (after one warm-up of each graph), then per preset `--pairs` alternating pairs (native, ours, ...),
each pair with a new seed so that ComfyUI's node cache runs the sampler again; text encode and VAE encode stay
cached on both sides (ComfyUI's node cache for the native graph, our encode cache for ours). The server runs
with --cache-lru 64: its default cache keeps only the last prompt's nodes, and alternating graphs would reload
both sides' models on every prompt. Each prompt is
timed from POST /prompt to the end of its execution on the websocket; ComfyUI's own "Prompt executed in" figure
and the per-node times (websocket) are reported too, with our sampler's stage times from the server log.

    COMFYUI_DIR=/work/comfy /work/tmp/timing.sh /work/comfy-venv/bin/python -m benchmarks.bench_vs_comfyui \\
        [--size 256 --steps 8 --denoise 0.5 --pairs 3 --presets balanced fast quality] [--json out.json]
    COMFYUI_DIR=/work/comfy /work/comfy-venv/bin/python -m benchmarks.bench_vs_comfyui --size 64 --steps 2 --pairs 1 --presets fast

Needs ~16 GB RAM (both sides' fp32 weights in one server) and ~3.4 GB of disk in --workdir (kept for reruns).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks._common import load_avg

REPO = Path(__file__).resolve().parents[1]
API_DIR = REPO / "workflows" / "api"
PACK_DIR_NAME = "z-realism"
GOALS = {"balanced": 0.70, "fast": 0.45}  # issue 20: ours / native wall time (balanced: the default preset)
# nodes neither side needs for the matched work (the maps are given, no LoRA, no scores)
STRIPPED = ("ZRealism_WhiteBackgroundPrep", "ZRealism_HeuristicAnalyzer", "ZRealism_ControlMaps",
            "ZRealism_FidelityEvaluator", "PreviewAny", "PreviewImage", "LoraLoader")
DEPTH_NODE, POSE_NODE = "40", "41"
RELOADERS = ("CheckpointLoaderSimple", "ControlNetLoader", "ZRealism_ModelLoader")  # the Load Image nodes of the given maps, in both graphs


@dataclass
class Job:
    """The matched work of one prompt, on both sides."""

    checkpoint: str
    depth_net: str
    pose_net: str
    image: str = "bench_drawing.png"
    depth_map: str = "bench_depth.png"
    pose_map: str = "bench_pose.png"
    steps: int = 8
    denoise: float = 0.5
    cfg: float = 7.0
    scale: float = 0.7
    prompt: str = "a photo of a young woman in a pink dress, detailed skin, natural light"
    negative: str = "cartoon, drawing, illustration, lowres"


# ------------------------------------------------------------------ the graphs (pure)

def _by_class(graph: Dict[str, Any], cls: str) -> List[str]:
    return [k for k, n in graph.items() if n["class_type"] == cls]


def _one(graph: Dict[str, Any], cls: str) -> str:
    ids = _by_class(graph, cls)
    if len(ids) != 1:
        raise ValueError(f"expected one {cls}, found {ids}")
    return ids[0]


def strip_nodes(graph: Dict[str, Any], classes: Sequence[str] = STRIPPED,
                bypass: Optional[Dict[str, Dict[int, List[Any]]]] = None) -> Dict[str, Any]:
    """`graph` without its nodes of `classes`. bypass {node id: {output: link}} re-links the users of a removed
    node's outputs first (a LoraLoader's model/clip to the checkpoint's); a link left to a removed node is
    an error (the caller must set that input)."""
    out = copy.deepcopy(graph)
    for node in out.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and value[0] in (bypass or {}) and value[1] in bypass[value[0]]:
                node["inputs"][name] = list(bypass[value[0]][value[1]])
    for k in [k for k, n in out.items() if n["class_type"] in classes]:
        del out[k]
    return out


def dangling_links(graph: Dict[str, Any]) -> List[str]:
    """'node.input -> missing' for every link to a node that is not in the graph."""
    return [f"{k}.{name} -> {value[0]}" for k, n in graph.items() for name, value in n["inputs"].items()
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0] not in graph]


def _add_maps(graph: Dict[str, Any], job: Job) -> None:
    graph[DEPTH_NODE] = {"class_type": "LoadImage", "inputs": {"image": job.depth_map}, "_meta": {"title": "Depth map"}}
    graph[POSE_NODE] = {"class_type": "LoadImage", "inputs": {"image": job.pose_map}, "_meta": {"title": "Pose map"}}


def _checked(graph: Dict[str, Any]) -> Dict[str, Any]:
    bad = dangling_links(graph)
    if bad:
        raise ValueError(f"links to removed nodes: {bad}")
    return graph


def native_sampler_steps(steps: int, denoise: float) -> int:
    """KSampler's steps for the work of our img2img `steps` x `denoise`: KSampler runs all the steps it is given,
    on the tail of a schedule of int(steps / denoise) steps, so int(steps x denoise) at the same denoise is the
    same number of UNet evaluations (and, when steps x denoise is whole, the same timesteps)."""
    from zrealism_core.runtime.fallback import expected_steps

    return max(1, expected_steps(steps, denoise))


def native_graph(shipped: Dict[str, Any], job: Job, seed: int) -> Dict[str, Any]:
    """zrealism_still_native.json reduced to ComfyUI's own nodes doing the matched work: checkpoint ->
    CLIPTextEncode x2 -> ControlNetApplyAdvanced x2 on the given maps -> KSampler (euler) -> VAEDecode -> Save."""
    ckpt, lora = _one(shipped, "CheckpointLoaderSimple"), _one(shipped, "LoraLoader")
    g = strip_nodes(shipped, bypass={lora: {0: [ckpt, 0], 1: [ckpt, 1]}})
    image = _one(g, "LoadImage")
    g[image]["inputs"]["image"] = job.image
    _add_maps(g, job)
    g[ckpt]["inputs"]["ckpt_name"] = job.checkpoint
    g[_one(g, "VAEEncode")]["inputs"]["pixels"] = [image, 0]
    sampler = _one(g, "KSampler")
    for k in _by_class(g, "ControlNetApplyAdvanced"):
        loader = g[g[k]["inputs"]["control_net"][0]]
        is_depth = "depth" in loader["inputs"]["control_net_name"].lower()
        loader["inputs"]["control_net_name"] = job.depth_net if is_depth else job.pose_net
        g[k]["inputs"].update(image=[DEPTH_NODE if is_depth else POSE_NODE, 0], strength=job.scale,
                              start_percent=0.0, end_percent=1.0)
        for side, text in (("positive", job.prompt), ("negative", job.negative)):
            source = g[g[k]["inputs"][side][0]]
            if source["class_type"] == "CLIPTextEncode":  # the first apply of the chain
                source["inputs"]["text"] = text
    g[sampler]["inputs"].update(seed=seed, steps=native_sampler_steps(job.steps, job.denoise), cfg=job.cfg,
                                denoise=job.denoise, sampler_name="euler", scheduler="normal")
    g[_one(g, "SaveImage")]["inputs"]["filename_prefix"] = "bench/native"
    return _checked(g)


def our_graph(shipped: Dict[str, Any], job: Job, seed: int, preset: str) -> Dict[str, Any]:
    """zrealism_still.json reduced to Load Image -> Z-Realism Dual ControlNet Sampler (the given maps, no
    mask or analyzer params: the widgets hold the matched settings) -> Save, `preset` on the sampler."""
    g = strip_nodes(shipped)
    image = _one(g, "LoadImage")
    g[image]["inputs"]["image"] = job.image
    _add_maps(g, job)
    g[_one(g, "ZRealism_ModelLoader")]["inputs"].update(checkpoint=job.checkpoint, depth_controlnet=job.depth_net,
                                                         pose_controlnet=job.pose_net, detail_controlnet="none")
    inputs = g[_one(g, "ZRealism_DualControlNetSampler")]["inputs"]
    for name in ("mask", "params"):
        inputs.pop(name, None)
    inputs.update(image=[image, 0], depth_map=[DEPTH_NODE, 0], pose_map=[POSE_NODE, 0], prompt=job.prompt,
                  negative=job.negative, seed=seed, steps=job.steps, cfg=job.cfg, denoise=job.denoise,
                  depth_scale=job.scale, pose_scale=job.scale, depth_start=0.0, depth_end=1.0, pose_start=0.0,
                  pose_end=1.0, scheduler="euler", color_lock=0.0, preset=preset)
    g[_one(g, "SaveImage")]["inputs"]["filename_prefix"] = f"bench/ours_{preset}"
    return _checked(g)


def shipped_graphs() -> Dict[str, Dict[str, Any]]:
    return {side: json.loads((API_DIR / name).read_text())
            for side, name in (("native", "zrealism_still_native.json"), ("ours", "zrealism_still.json"))}


# ------------------------------------------------------------------ log parsing (pure)

PROMPT_EXECUTED = re.compile(r"Prompt executed in ([\d.]+) seconds")
OUR_STAGE = re.compile(r"zrealism: (.+?) done in ([\d.]+) s")


def executed_seconds(log: str) -> Optional[float]:
    """ComfyUI's own "Prompt executed in X seconds" in a slice of its log (the last one), or None."""
    found = PROMPT_EXECUTED.findall(log)
    return float(found[-1]) if found else None


def our_stages(log: str) -> Dict[str, float]:
    """Our sampler's stage times ("zrealism: <stage> done in X s") in a slice of the server log, summed by stage."""
    out: Dict[str, float] = {}
    for name, secs in OUR_STAGE.findall(log):
        out[name] = round(out.get(name, 0.0) + float(secs), 3)
    return out


# ------------------------------------------------------------------ the run

def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def write_inputs(folder: Path, size: int) -> None:
    """The bundled sample character (flat background) and random depth and pose maps (the benchmark's maps)."""
    import numpy as np
    from PIL import Image

    from zrealism_core.imaging.sample import sample_character

    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.RandomState(0)
    maps = {"bench_depth.png": rs.rand(size, size, 3), "bench_pose.png": rs.rand(size, size, 3)}
    pictures = {"bench_drawing.png": sample_character(size, background="flat"), **maps}
    for name, arr in pictures.items():
        Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8)).save(folder / name)


def write_models(models: Path, seed: int = 0) -> Dict[str, str]:
    """The real-size files, written once into `models` (kept for reruns: a marker names the seed)."""
    marker = models / f".zr_sd15_seed{seed}"
    names = {"checkpoint": "zr-sd15.safetensors", "depth": "zr-sd15-depth.safetensors",
             "pose": "zr-sd15-openpose.safetensors"}
    if not marker.is_file():
        from zrealism_core.testing.native_models import write_sd15_model_set

        t = time.perf_counter()
        made = write_sd15_model_set(models, seed=seed)
        assert (made.checkpoint.name, made.depth_controlnet.name, made.pose_controlnet.name) == tuple(names.values())
        marker.write_text("written\n")
        print(f"  wrote the SD1.5 random-weight models in {time.perf_counter() - t:.0f} s", flush=True)
    return names


@dataclass
class Timed:
    side: str
    preset: str
    seed: int
    wall_s: float
    executed_s: Optional[float]
    nodes_s: Dict[str, float] = field(default_factory=dict)
    stages_s: Dict[str, float] = field(default_factory=dict)


def run_prompt(server: Any, graph: Dict[str, Any], side: str, preset: str, seed: int) -> Timed:
    from zrealism_core.testing.comfy_server import queue_and_time_nodes, wait_history

    offset = len(server.log_text())
    status, answer, nodes, _, wall = queue_and_time_nodes(server.base, graph, f"zr-bench-{side}")
    if status != 200 or answer.get("node_errors"):
        raise RuntimeError(f"{side} rejected: {json.dumps(answer, indent=1)[:4000]}")
    entry = wait_history(server, answer["prompt_id"])
    if entry["status"]["status_str"] != "success" or wall is None:
        raise RuntimeError(f"{side} failed: {json.dumps(entry['status'], indent=1)[:4000]}\n{server.log_tail()}")
    time.sleep(0.3)  # the log line after execution_success
    log = server.log_text()[offset:]
    named = {f"{k} {graph[k]['class_type']}": round(v, 3) for k, v in nodes.items() if k in graph}
    return Timed(side, preset, seed, round(wall, 3), executed_seconds(log), named, our_stages(log) if side == "ours" else {})


def _median_nodes(runs: List[Timed]) -> Dict[str, float]:
    keys = {k for r in runs for k in r.nodes_s}
    return {k: round(statistics.median(r.nodes_s.get(k, 0.0) for r in runs), 2) for k in sorted(keys)}


def _median_stages(runs: List[Timed]) -> Dict[str, float]:
    keys = {k for r in runs for k in r.stages_s}
    return {k: round(statistics.median(r.stages_s.get(k, 0.0) for r in runs), 2) for k in sorted(keys)}


def bench(args: argparse.Namespace) -> Dict[str, Any]:
    from zrealism_core.testing.comfy_server import running_server

    work = Path(args.workdir)
    (work / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = work / "custom_nodes" / PACK_DIR_NAME
    if link.is_symlink() and link.resolve() != REPO:
        link.unlink()
    if not link.exists():
        os.symlink(REPO, link)
    names = write_models(work / "models", seed=0)
    write_inputs(work / "input", args.size)
    job = Job(checkpoint=names["checkpoint"], depth_net=names["depth"], pose_net=names["pose"],
              steps=args.steps, denoise=args.denoise)
    shipped = shipped_graphs()
    out: Dict[str, Any] = {"job": asdict(job), "size": args.size, "pairs": args.pairs,
                           "native_ksampler_steps": native_sampler_steps(args.steps, args.denoise),
                           "uptime_before": uptime(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"  uptime before: {out['uptime_before']}", flush=True)
    seed = 1000
    runs: List[Timed] = []
    t0 = time.perf_counter()
    # ComfyUI's default (classic) cache keeps only the last prompt's nodes, so alternating the two graphs would
    # reload both sides' models every time; an LRU cache keeps the loaders and encoders of both graphs
    with running_server(work, "zrealism_bench", ["checkpoints", "controlnet"], ("--cache-lru", "64"),
                        comfyui_dir=args.comfyui_dir) as srv:
        out["server_start_s"] = round(time.perf_counter() - t0, 1)
        warm = [run_prompt(srv, native_graph(shipped["native"], job, seed), "native", "-", seed)]
        for preset in args.presets:
            warm.append(run_prompt(srv, our_graph(shipped["ours"], job, seed, preset), "ours", preset, seed))
        out["warm_up"] = [asdict(w) for w in warm]
        print("  warm-up (loads the models): " + ", ".join(f"{w.side} {w.preset} {w.wall_s:.1f} s" for w in warm), flush=True)
        for preset in args.presets:
            for _ in range(args.pairs):
                seed += 1
                pair = [run_prompt(srv, native_graph(shipped["native"], job, seed), "native", preset, seed),
                        run_prompt(srv, our_graph(shipped["ours"], job, seed, preset), "ours", preset, seed)]
                runs += pair
                print(f"  {preset} seed {seed}: native {pair[0].wall_s:.2f} s, ours {pair[1].wall_s:.2f} s "
                      f"(ratio {pair[1].wall_s / pair[0].wall_s:.3f}); load {load_avg()}", flush=True)
        out["server_log_tail"] = srv.log_tail(5)
    out["uptime_after"] = uptime()
    print(f"  uptime after: {out['uptime_after']}", flush=True)
    out["runs"] = [asdict(r) for r in runs]
    rows = {}
    for preset in args.presets:
        nat = [r for r in runs if r.preset == preset and r.side == "native"]
        ours = [r for r in runs if r.preset == preset and r.side == "ours"]
        n_s, o_s = statistics.median(r.wall_s for r in nat), statistics.median(r.wall_s for r in ours)
        ex = [r.executed_s for r in nat + ours if r.executed_s is not None]
        rows[preset] = {
            "native_s": round(n_s, 2), "ours_s": round(o_s, 2), "ratio": round(o_s / n_s, 3),
            "pair_ratios": [round(o.wall_s / n.wall_s, 3) for n, o in zip(nat, ours)],
            "goal": GOALS.get(preset), "met": (o_s / n_s <= GOALS[preset]) if preset in GOALS else None,
            "native_executed_s": round(statistics.median(r.executed_s for r in nat), 2) if len(ex) == len(nat + ours) else None,
            "ours_executed_s": round(statistics.median(r.executed_s for r in ours), 2) if len(ex) == len(nat + ours) else None,
            "native_nodes_s": _median_nodes(nat), "ours_nodes_s": _median_nodes(ours), "ours_stages_s": _median_stages(ours),
        }
    out["rows"] = rows
    rerun = sorted({k for r in runs for k in r.nodes_s if k.split(" ", 1)[1] in RELOADERS})
    out["loaders_rerun"] = rerun  # should be empty: the pairs time the sampling, not the loading
    return out


def table(res: Dict[str, Any]) -> str:
    j = res["job"]
    lines = [
        f"Ours vs ComfyUI's native dual-ControlNet graph, one ComfyUI server ({res['date']}): SD1.5 architecture, "
        f"random weights, {res['size']}x{res['size']}, euler, {j['steps']} steps x denoise {j['denoise']} "
        f"(KSampler {res['native_ksampler_steps']} steps at denoise {j['denoise']}), CFG {j['cfg']}, depth + OpenPose "
        f"at {j['scale']} on given maps; warm, median of {res['pairs']} alternating pairs, a new seed per pair "
        "(text and VAE encode cached on both sides: ComfyUI's node cache, our encode cache; server with --cache-lru 64).",
        f"uptime before: {res['uptime_before']}",
        f"uptime after:  {res['uptime_after']}",
        "",
        "| preset | native s | ours s | ratio (goal) | pair ratios | ComfyUI 'Prompt executed in' native / ours s |",
        "|---|---|---|---|---|---|",
    ]
    for preset, r in res["rows"].items():
        goal = f" (<= {r['goal']:.2f}: {'met' if r['met'] else 'NOT met'})" if r["goal"] else ""
        ex = f"{r['native_executed_s']} / {r['ours_executed_s']}" if r["native_executed_s"] is not None else "n/a"
        lines.append(f"| {preset} | {r['native_s']:.2f} | {r['ours_s']:.2f} | {r['ratio']:.3f}{goal} | "
                     f"{', '.join(f'{x:.3f}' for x in r['pair_ratios'])} | {ex} |")
    lines.append("")
    if res.get("loaders_rerun"):
        lines.append(f"WARNING: loaders ran again in the timed pairs: {res['loaders_rerun']}")
    for preset, r in res["rows"].items():
        lines.append(f"{preset}: native nodes (s, median) {r['native_nodes_s']}")
        lines.append(f"{preset}: our nodes (s, median) {r['ours_nodes_s']}; our sampler's stages {r['ours_stages_s']}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--denoise", type=float, default=0.5)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--presets", nargs="+", default=["balanced", "fast", "quality"])
    ap.add_argument("--comfyui-dir", default=os.environ.get("COMFYUI_DIR"))
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "zr_bench_vs_comfyui"),
                    help="server root (models kept here for reruns); outside the repo")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    if not args.comfyui_dir or not (Path(args.comfyui_dir) / "main.py").is_file():
        ap.error("set COMFYUI_DIR (or --comfyui-dir) to a ComfyUI checkout")
    res = bench(args)
    print(table(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
