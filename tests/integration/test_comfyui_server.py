"""Every shipped API workflow runs on a real ComfyUI server with this pack loaded (tiny models).

Skipped unless COMFYUI_DIR points to a ComfyUI checkout; run it with the Python that has ComfyUI's
requirements installed:

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy-python -m pytest tests/integration -q -s

What it does: starts `main.py --cpu` on a free loopback port, with an --extra-model-paths-config
yaml whose `custom_nodes:` entry holds a symlink to this repository and whose model folders hold
tiny random-weight models written by zrealism_core.testing.tiny_models / tiny_motion / tiny_annotators;
then posts each workflows/api/*.json to /prompt (model names, sizes, steps and frame counts patched
down in the posted copy), waits on /history, and checks the outputs, and that our samplers sent a
preview per step through ComfyUI's previewer (the server runs with --preview-method taesd and a
tiny TAESD decoder in models/vae_approx). It also checks /object_info
(our nodes, with a tooltip on every input) and /workflow_templates.

Timings per workflow are printed and, when ZR_TIMINGS_JSON names a file, written there.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run from tests/integration: zrealism_core for the helpers below
    sys.path.insert(0, str(REPO))

from zrealism_core.testing.comfy_server import (  # noqa: E402  (the one server starter; benchmarks use it too)
    RUN_TIMEOUT_S, Server, queue_and_time_nodes, running_server, wait_history,
)

API_DIR = REPO / "workflows" / "api"
COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
PACK_DIR_NAME = "z-realism"

pytestmark = pytest.mark.skipif(
    not COMFYUI_DIR or not (Path(COMFYUI_DIR) / "main.py").is_file(),
    reason="set COMFYUI_DIR to a ComfyUI checkout to run the server integration test",
)

TIMINGS: Dict[str, float] = {}


# ------------------------------------------------------------------ tiny models on disk

def write_models(models: Path, native: bool = True) -> Dict[str, str]:
    """Tiny random-weight models in a ComfyUI-style models/ tree; returns role -> file name as the
    loader nodes list it. `native` adds the checkpoint, ControlNets and LoRA that ComfyUI's own loaders
    accept (native_models.write_native_model_set, about 560 MB) for the native-sampler graph."""
    from zrealism_core.testing import tiny_annotators
    from zrealism_core.testing import native_models, tiny_models
    from zrealism_core.testing import tiny_motion
    from zrealism_core.models.catalog import ANNOTATOR_FOLDER

    for sub in ("checkpoints", "controlnet", "animatediff_models", "diffusers", ANNOTATOR_FOLDER):
        (models / sub).mkdir(parents=True, exist_ok=True)
    tiny_models.write_tiny_diffusers_folder(models / "diffusers" / "tiny-sd15", seed=0)
    tiny_models.write_tiny_controlnet(models / "controlnet" / "tiny-control-depth.safetensors", "ldm", 1)
    tiny_models.write_tiny_controlnet(models / "controlnet" / "tiny-control-openpose.safetensors", "ldm", 2)
    tiny_models.write_tiny_controlnet(models / "controlnet" / "tiny-control-lineart.safetensors", "ldm", 3)
    tiny_motion.write_tiny_motion_adapter(models / "animatediff_models" / "tiny-mm-sd15.safetensors", "original")
    tiny_annotators.write_tiny_depth_anything(models / ANNOTATOR_FOLDER)
    tiny_annotators.write_openpose_files(models / ANNOTATOR_FOLDER)
    from zrealism_core.testing import tiny_ip_adapter, tiny_loras

    tiny_loras.write_kohya_lora(models / "loras" / "tiny-realism-lora.safetensors")
    tiny_ip_adapter.write_tiny_ip_adapter(models / "ipadapter" / "ip-adapter-plus_tiny.safetensors", "plus")
    tiny_ip_adapter.write_tiny_clip_vision(models / "clip_vision" / "tiny-clip-vision.safetensors")
    roles = {}
    if native:
        made = native_models.write_native_model_set(models)
        roles = {"native_checkpoint": made.checkpoint.name, "native_depth": made.depth_controlnet.name,
                 "native_pose": made.pose_controlnet.name, "native_lora": made.lora.name}
    return {
        **roles,
        "lora": "tiny-realism-lora.safetensors",
        "ipadapter": "ip-adapter-plus_tiny.safetensors",
        "clip_vision": "tiny-clip-vision.safetensors",
        "checkpoint": "tiny-sd15",
        "depth": "tiny-control-depth.safetensors",
        "pose": "tiny-control-openpose.safetensors",
        "detail": "tiny-control-lineart.safetensors",
        "motion": "tiny-mm-sd15.safetensors",
    }


# the colour a preview made by the TAESD decoder below shows (its last conv is zero, its bias this)
TAESD_COLOUR = (0.2, 0.6, 0.9)


def write_taesd_decoder(path: Path) -> None:
    """A random-weight TAESD decoder for --preview-method taesd, in ComfyUI's own layout (built by
    ComfyUI's class in a subprocess, so this test process never imports ComfyUI). Its output is the
    flat colour TAESD_COLOUR, which no Latent2RGB preview gives: a preview in that colour came from TAESD."""
    path.parent.mkdir(parents=True, exist_ok=True)
    script = (
        "import sys, torch\n"
        "from safetensors.torch import save_file\n"
        "import comfy.cli_args\n"
        "comfy.cli_args.args.cpu = True  # as main.py --cpu (model_management looks for a GPU on import)\n"
        "from comfy.taesd.taesd import Decoder\n"
        "g = torch.Generator().manual_seed(0)\n"
        "sd = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in Decoder(4).state_dict().items()}\n"
        "last = [k for k, v in sd.items() if v.ndim == 4 and v.shape[0] == 3][-1]\n"
        "sd[last] = torch.zeros_like(sd[last])\n"
        f"sd[last[:-len('weight')] + 'bias'] = torch.tensor({list(TAESD_COLOUR)})\n"
        "save_file(sd, sys.argv[1])\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=COMFYUI_DIR, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(COMFYUI_DIR)))
    assert done.returncode == 0, done.stderr[-3000:]


def write_inputs(folder: Path) -> Dict[str, str]:
    """A small character on white, plus depth and pose maps for the custom-maps workflow."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    h = w = 64
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.ones((h, w, 3), np.float32)
    body = ((xx - 32) / 12.0) ** 2 + ((yy - 36) / 22.0) ** 2 < 1
    head = ((xx - 32) ** 2 + (yy - 12) ** 2) < 64
    img[body] = (0.85, 0.35, 0.30)
    img[head] = (0.95, 0.80, 0.65)
    outline = (((xx - 32) / 13.5) ** 2 + ((yy - 36) / 23.5) ** 2 < 1) & ~body  # dark line art: the detail hint's strokes
    img[outline] = (0.1, 0.08, 0.12)
    depth = np.where((body | head)[..., None], 0.8, 0.1).repeat(3, axis=2)
    pose = np.zeros((h, w, 3), np.float32)
    pose[10:60, 31:33] = (1.0, 0.0, 0.0)
    names = {"image": "zr_character.png", "depth": "depth_map.png", "pose": "pose_map.png"}  # as the graphs select
    for key, arr in (("image", img), ("depth", depth), ("pose", pose)):
        Image.fromarray((arr * 255).astype(np.uint8)).save(folder / names[key])
    return names


# ------------------------------------------------------------------ the server

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy")
    (root / "custom_nodes").mkdir()
    os.symlink(REPO, root / "custom_nodes" / PACK_DIR_NAME)
    sys.path.insert(0, str(REPO))  # zrealism_core for the tiny-model writers
    names = write_models(root / "models")
    write_taesd_decoder(root / "models" / "vae_approx" / "taesd_decoder.safetensors")
    inputs = write_inputs(root / "input")
    example = Path(COMFYUI_DIR) / "input" / "example.png"  # what the shipped graphs select (screenshots)
    if example.is_file():
        shutil.copy(example, root / "input" / "example.png")
    folders = ["checkpoints", "controlnet", "animatediff_models", "diffusers", "zrealism_annotators", "loras", "ipadapter",
               "clip_vision", "vae_approx"]
    started = time.perf_counter()
    try:
        with running_server(root, "zrealism_test", folders, ("--preview-method", "taesd")) as srv:
            srv.names, srv.inputs = names, inputs
            TIMINGS["server start (s)"] = round(time.perf_counter() - started, 1)
            yield srv
    finally:
        if os.environ.get("ZR_TIMINGS_JSON"):
            Path(os.environ["ZR_TIMINGS_JSON"]).write_text(json.dumps(TIMINGS, indent=2) + "\n")
        print("\nZ-Realism integration timings:", json.dumps(TIMINGS, indent=2))


def _our_node_ids() -> List[str]:
    ids = set()
    for path in API_DIR.glob("*.json"):
        ids |= {n["class_type"] for n in json.loads(path.read_text()).values() if n["class_type"].startswith("ZRealism_")}
    return sorted(ids)


def test_pack_imports_without_errors(server):
    text = server.log.read_text(errors="replace")
    ours = [line for line in text.splitlines() if f"custom_nodes/{PACK_DIR_NAME}" in line]
    assert ours, f"the pack was not loaded:\n{server.log_tail()}"  # ComfyUI logs each pack's import time
    assert not any("IMPORT FAILED" in line for line in ours), "\n".join(ours)
    assert "Z-Realism:" not in text or "failed to load" not in text, server.log_tail()


def test_object_info_lists_our_nodes_with_tooltips(server):
    info = server.get("/object_info")
    ours = {k: v for k, v in info.items() if k.startswith("ZRealism_")}
    expected = set(_our_node_ids()) | {"ZRealism_LoadImageFolder"}  # in no shipped graph: test_image_folder_graph
    assert expected <= set(ours), f"missing: {expected - set(ours)}"
    assert ours["ZRealism_LoadImageFolder"]["output_is_list"] == [True, True, True, True, False, False]
    for name, node in ours.items():
        assert node["category"].startswith("Z-Realism"), name
        assert node["description"], f"{name} has no DESCRIPTION"
        for section in ("required", "optional"):
            for inp, spec in node["input"].get(section, {}).items():
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                assert opts.get("tooltip"), f"{name}.{inp} has no tooltip"
        assert len(node.get("output_tooltips", [])) == len(node["output"]), f"{name}: output tooltips"


def test_workflow_templates_are_listed(server):
    templates = server.get("/workflow_templates")
    assert PACK_DIR_NAME in templates, templates
    assert {p.stem for p in API_DIR.glob("*.json")} <= set(templates[PACK_DIR_NAME])


# ------------------------------------------------------------------ running the workflows

# Widget values made tiny in the posted copy (input name -> value); the files keep real defaults.
TINY_VALUES: Dict[str, Any] = {
    "steps": 2, "frames": 4, "frame_count": 4, "num_frames": 4, "context_length": 4,
    "resolution": 64, "max_resolution": 64, "width": 64, "height": 64, "annotator_resolution": 64,
    "eval_resolution": 64, "long_side": 64, "detect_resolution": 64,
}


def patch_for_tiny_run(prompt: Dict[str, Any], object_info: Dict[str, Any], names: Dict[str, str],
                       inputs: Dict[str, str], seed: int) -> Dict[str, Any]:
    """Point model and image widgets at the tiny files, shrink sizes/steps/frames, and vary the seed
    (ComfyUI caches by inputs: an unchanged prompt would execute nothing)."""
    out = copy.deepcopy(prompt)
    for node in out.values():
        info = object_info[node["class_type"]]
        specs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        for name, value in list(node["inputs"].items()):
            if isinstance(value, list):
                continue
            spec = specs.get(name, [None])
            if name in TINY_VALUES and isinstance(value, (int, float)) and not isinstance(value, bool):
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                node["inputs"][name] = max(TINY_VALUES[name], opts.get("min", TINY_VALUES[name]))
            elif name == "seed":
                node["inputs"][name] = seed
            elif isinstance(spec[0], list) and isinstance(value, str):  # a combo: maybe a file list
                node["inputs"][name] = _tiny_choice(node["class_type"], name, value, spec[0], names, inputs)
    return out


def _tiny_choice(cls: str, name: str, value: str, choices: List[str], names: Dict[str, str], inputs: Dict[str, str]) -> str:
    if cls == "LoadImage":
        low = value.lower()
        key = "depth" if "depth" in low else "pose" if "pose" in low else "image"
        return inputs[key]
    if value in choices:
        return value
    # ComfyUI's own loaders (the native-sampler graph) get the set they detect as SD1.5
    if cls in ("CheckpointLoaderSimple", "LoraLoader"):
        return names["native_checkpoint" if cls == "CheckpointLoaderSimple" else "native_lora"]
    if cls == "ControlNetLoader":
        return names["native_pose" if "pose" in value.lower() else "native_depth"]
    low = (name + " " + value).lower()
    for role, keys in (("lora", ("lora_name",)), ("ipadapter", ("ipadapter ",)), ("clip_vision", ("clip_vision ",)),
                       ("detail", ("detail_controlnet",)), ("depth", ("depth",)), ("pose", ("pose",)),
                       ("motion", ("motion", "mm_", "animatediff")),
                       ("checkpoint", ("ckpt", "checkpoint", "base", "model", "v1-5"))):
        hits = [c for c in choices if names[role] in c]  # a diffusers folder is listed as "[diffusers] name"
        if any(k in low for k in keys) and hits:
            return hits[0]
    raise AssertionError(f"{cls}.{name}: no tiny file for {value!r} among {choices}")


def _run(server: Server, prompt: Dict[str, Any], label: str) -> Dict[str, Any]:
    """Queue `prompt`, wait for it, check it succeeded, record its timings; returns the history entry."""
    started = time.perf_counter()
    status, answer, node_times, previews, _ = queue_and_time_nodes(server.base, prompt, "zrealism-test", RUN_TIMEOUT_S)
    assert status == 200, f"{label} rejected: {json.dumps(answer, indent=1)[:4000]}"
    assert answer.get("node_errors") == {}, answer
    entry = wait_history(server, answer["prompt_id"], RUN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    messages = entry["status"].get("messages", [])
    errors = [m for m in messages if m[0] == "execution_error"]
    assert entry["status"]["status_str"] == "success", json.dumps(errors, indent=1)[:6000]
    TIMINGS[label] = {
        "total_s": round(elapsed, 1),
        "nodes_s": {f"{k} {prompt[k]['class_type']}": round(v, 2) for k, v in sorted(node_times.items(), key=lambda kv: -kv[1])},
    }
    entry["previews"] = previews
    return entry


@pytest.mark.parametrize("path", sorted(API_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_api_workflow_runs(server, path):
    object_info = server.get("/object_info")
    prompt = patch_for_tiny_run(json.loads(path.read_text()), object_info, server.names, server.inputs,
                                seed=int(time.time()) % 100000)
    entry = _run(server, prompt, path.stem)

    outputs = entry["outputs"]
    output_nodes = [k for k, n in prompt.items() if object_info[n["class_type"]].get("output_node")]
    assert set(output_nodes) <= set(outputs), f"output nodes without outputs: {set(output_nodes) - set(outputs)}"
    files = [img for out in outputs.values() for img in out.get("images", []) + out.get("gifs", []) + out.get("videos", [])]
    assert files, outputs
    for f in files:
        # --temp-directory D puts previews in D/temp
        base = server.root / "output" if f.get("type") == "output" else server.root / "temp" / "temp"
        written = base / f.get("subfolder", "") / f["filename"]
        assert written.is_file() and written.stat().st_size > 0, written
    # our samplers preview every step through ComfyUI's previewer: --preview-method taesd, so each
    # picture is the TAESD decoder's flat colour (a clip shows its middle frame)
    samplers = [k for k, n in prompt.items() if n["class_type"] in ("ZRealism_DualControlNetSampler", "ZRealism_AnimateDiffFuse")]
    for k in samplers:
        pictures = entry["previews"].get(k, [])
        assert pictures, f"{prompt[k]['class_type']} sent no preview"
        for picture in pictures:
            mean = np.asarray(picture, np.float32).reshape(-1, 3).mean(0) / 255.0
            assert np.abs(mean - np.array(TAESD_COLOUR)).max() < 0.02, (prompt[k]["class_type"], mean)
    TIMINGS[path.stem]["previews"] = {k: len(entry["previews"].get(k, [])) for k in samplers}
    evaluators = [k for k, n in prompt.items() if n["class_type"] == "ZRealism_FidelityEvaluator"]
    assert evaluators
    for k in evaluators:  # ui text = [summary, JSON report]: what API clients read
        texts = outputs[k].get("text", [])
        report = json.loads(texts[-1])
        scores = report["scores"]
        assert "overall" in scores and all(0.0 <= v <= 1.0 for v in scores.values()), scores
        assert 0.0 <= report["control"]["edge_f"] <= 1.0, report["control"]  # control fidelity, always computed
    if any(n["class_type"] == "ZRealism_ModelLoader" and n["inputs"].get("detail_controlnet", "none") != "none"
           for n in prompt.values()):  # the detail net ran on its line-art hint (not switched off)
        log = server.log.read_text(errors="replace")
        assert "zrealism: detail hint (lineart)" in log and "detail ControlNet off" not in log, server.log_tail()
        TIMINGS[path.stem].setdefault("scores", {})[k] = {n: round(v, 3) for n, v in scores.items()}


def write_folder(folder: Path, drawing: Path) -> Dict[str, tuple]:
    """Two drawings of different sizes (long side 64, as the tiny run's prep makes them) and one corrupt file."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"hero_2.png": (48, 64), "hero_10.png": (64, 40)}  # name -> (width, height), in name order
    with Image.open(drawing) as img:
        for name, size in sizes.items():
            img.convert("RGB").resize(size, Image.LANCZOS).save(folder / name)
    (folder / "hero_3.png").write_bytes(b"\x89PNG this file is broken")
    return sizes


def with_image_folder(prompt: Dict[str, Any], folder: str) -> Dict[str, Any]:
    """The graph with its Load Image swapped for Z-Realism Load Image Folder (its image and mask outputs are in the
    same slots), Save Image's filename_prefix taken from the folder's names, and its report shown."""
    out = copy.deepcopy(prompt)
    load = next(k for k, n in out.items() if n["class_type"] == "LoadImage")
    out[load] = {"class_type": "ZRealism_LoadImageFolder",
                 "inputs": {"folder": folder, "pattern": "hero_*", "limit": 0, "filename_prefix": "ZRealism/folder_"}}
    save = next(k for k, n in out.items() if n["class_type"] == "SaveImage")
    out[save]["inputs"]["filename_prefix"] = [load, 3]
    out["200"] = {"class_type": "PreviewAny", "inputs": {"source": [load, 5]}}
    return out


def test_image_folder_graph(server):
    """A folder with two drawings of different sizes and a corrupt file through the still graph on a real server:
    ComfyUI runs prep, analyzer, sampler and evaluator once per image, each result keeps its own size, is saved
    under its source's name, and the report names the skipped file."""
    from PIL import Image

    object_info = server.get("/object_info")
    sizes = write_folder(server.root / "input" / "sheet", server.root / "input" / server.inputs["image"])
    plain = patch_for_tiny_run(json.loads((API_DIR / "zrealism_still.json").read_text()), object_info, server.names,
                               server.inputs, seed=int(time.time()) % 100000 + 13)
    prompt = with_image_folder(plain, "sheet")
    entry = _run(server, prompt, "zrealism_still from an image folder")
    outputs = entry["outputs"]
    save = next(k for k, n in prompt.items() if n["class_type"] == "SaveImage")
    saved = outputs[save]["images"]
    assert [f["filename"].split("_000")[0] for f in saved] == ["folder_hero_2", "folder_hero_10"], saved
    for f, size in zip(saved, sizes.values()):
        assert f["subfolder"] == "ZRealism"
        with Image.open(server.root / "output" / f["subfolder"] / f["filename"]) as img:
            assert img.size == size, (f["filename"], img.size)
    report = outputs["200"]["text"][0]
    assert report.startswith("2 image(s) loaded, 1 skipped") and "skipped hero_3.png" in report, report
    evaluator = next(k for k, n in prompt.items() if n["class_type"] == "ZRealism_FidelityEvaluator")
    texts = outputs[evaluator]["text"]  # [summary, JSON] per image
    assert len(texts) == 4 and all("overall" in json.loads(t)["scores"] for t in texts[1::2]), texts
    sampler = next(k for k, n in prompt.items() if n["class_type"] == "ZRealism_DualControlNetSampler")
    assert len(entry["previews"].get(sampler, [])) >= 2  # a preview per step of each image's job


def with_lora_and_ip_adapter(prompt: Dict[str, Any], names: Dict[str, str], weight: float = 1.0) -> Dict[str, Any]:
    """The graph with ZRealism_LoraLoader + ZRealism_IPAdapter (fed the prepared drawing) between the Model
    Loader and every node that used its pipe."""
    out = copy.deepcopy(prompt)
    loader = next(k for k, n in out.items() if n["class_type"] == "ZRealism_ModelLoader")
    prep = next(k for k, n in out.items() if n["class_type"] == "ZRealism_WhiteBackgroundPrep")
    for node in out.values():
        for name, value in node["inputs"].items():
            if value == [loader, 0]:
                node["inputs"][name] = ["101", 0]
    out["100"] = {"class_type": "ZRealism_LoraLoader",
                  "inputs": {"pipe": [loader, 0], "lora_name": names["lora"], "strength": 1.0}}
    out["101"] = {"class_type": "ZRealism_IPAdapter",
                  "inputs": {"pipe": ["100", 0], "ipadapter": names["ipadapter"], "clip_vision": names["clip_vision"],
                             "image": [prep, 0], "weight": weight, "start": 0.0, "end": 1.0}}
    return out


def _saved_still(server: Server, entry: Dict[str, Any], prompt: Dict[str, Any]) -> np.ndarray:
    from PIL import Image

    save = next(k for k, n in prompt.items() if n["class_type"] == "SaveImage")
    f = entry["outputs"][save]["images"][0]
    return np.asarray(Image.open(server.root / "output" / f.get("subfolder", "") / f["filename"]))


@pytest.mark.parametrize("stem", ["zrealism_still", "zrealism_video"])
def test_lora_and_ip_adapter_graph(server, stem):
    """ZRealism_LoraLoader + ZRealism_IPAdapter with tiny files on a real server: the still (and the clip)
    run with them, the still differs from the same graph without them, and the plain graph run after
    them gives its first result again (the shared pipeline was restored)."""
    object_info = server.get("/object_info")
    seed = int(time.time()) % 100000 + 7
    plain = patch_for_tiny_run(json.loads((API_DIR / f"{stem}.json").read_text()), object_info, server.names, server.inputs, seed)
    first = _saved_still(server, _run(server, plain, f"{stem} plain"), plain)
    adapted = with_lora_and_ip_adapter(plain, server.names)
    entry = _run(server, adapted, f"{stem} + LoRA + IP-Adapter")
    assert not np.array_equal(_saved_still(server, entry, adapted), first)
    again = copy.deepcopy(plain)
    sampler = next(k for k, n in again.items() if n["class_type"] == "ZRealism_DualControlNetSampler")
    again["999"] = {"class_type": "ZRealism_LoraLoader",
                    "inputs": {"pipe": [next(k for k, n in again.items() if n["class_type"] == "ZRealism_ModelLoader"), 0],
                               "lora_name": server.names["lora"], "strength": 0.0}}
    again[sampler]["inputs"]["pipe"] = ["999", 0]  # a new input, so ComfyUI runs the sampler again; strength 0 = plain
    assert np.array_equal(_saved_still(server, _run(server, again, f"{stem} LoRA at 0"), again), first)


def test_native_graph_applies_the_lora(server):
    """The native-sampler graph (core CheckpointLoaderSimple -> LoraLoader -> ControlNetApplyAdvanced x2 fed by
    ZRealism_ControlMaps -> KSampler) with the LoRA at strength 1: ComfyUI maps every key of our kohya file
    (no "lora key not loaded"), and the saved image differs from the same graph at strength 0."""
    object_info = server.get("/object_info")
    seed = int(time.time()) % 100000 + 11
    prompt = patch_for_tiny_run(json.loads((API_DIR / "zrealism_still_native.json").read_text()), object_info,
                                server.names, server.inputs, seed)
    lora = next(k for k, n in prompt.items() if n["class_type"] == "LoraLoader")
    images = {}
    for strength in (0.0, 1.0):
        run = copy.deepcopy(prompt)
        run[lora]["inputs"].update(strength_model=strength, strength_clip=strength)
        images[strength] = _saved_still(server, _run(server, run, f"zrealism_still_native LoRA {strength}"), run)
    log = server.log.read_text(errors="replace")
    assert "lora key not loaded" not in log, [line for line in log.splitlines() if "lora key not loaded" in line][:5]
    assert images[0.0].shape == images[1.0].shape and not np.array_equal(images[0.0], images[1.0])


# ------------------------------------------------------------------ the editor itself

PLAYWRIGHT_DIR = os.environ.get("ZR_PLAYWRIGHT_DIR")  # a folder with node_modules/playwright-core
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.mark.skipif(not PLAYWRIGHT_DIR or not Path(CHROMIUM).is_file() or not shutil.which("node"),
                    reason="set ZR_PLAYWRIGHT_DIR (npm install playwright-core there) and install chromium")
def test_editor_loads_graphs_and_exports_the_api_twins(server, tmp_path):
    """The real frontend loads each UI graph unchanged and its "Export (API)" equals our API twin.
    Screenshots land in ZR_SCREENSHOT_DIR when set (that is how docs/workflow_*.png are made)."""
    out = Path(os.environ.get("ZR_SCREENSHOT_DIR") or tmp_path)
    object_info = server.get("/object_info")
    ui_files = sorted((REPO / "workflows").glob("*.json"))
    script = Path(__file__).with_name("screenshot_workflows.mjs")
    run = subprocess.run(["node", str(script), server.base, str(out), *map(str, ui_files)], cwd=PLAYWRIGHT_DIR,
                         capture_output=True, text=True, timeout=600, env=dict(os.environ, CHROMIUM=CHROMIUM))
    assert run.returncode == 0, run.stdout + run.stderr
    for path in ui_files:
        ours = json.loads(path.read_text())
        graph = json.loads((out / f"{path.stem}.graph.json").read_text())
        assert sorted(graph["links"]) == sorted(ours["links"]), path.name
        theirs = {str(n["id"]): n for n in graph["nodes"]}
        for node in ours["nodes"]:
            again = theirs[str(node["id"])]
            assert again["type"] == node["type"]
            assert again.get("widgets_values") == node.get("widgets_values"), (path.name, node["type"])
            assert [i["name"] for i in again.get("inputs", [])] == [i["name"] for i in node.get("inputs", [])], node["type"]
        exported = json.loads((out / f"{path.stem}.prompt.json").read_text())
        twin = json.loads((API_DIR / path.name).read_text())
        assert strip(exported, object_info) == strip(twin, object_info), path.name


def strip(prompt: Dict[str, Any], object_info: Dict[str, Any]) -> Dict[str, Any]:
    """class_type + the inputs the node defines (the editor also exports values of its own display-only
    widgets, e.g. PreviewAny's "preview"; the server ignores them)."""
    out = {}
    for k, v in prompt.items():
        info = object_info[v["class_type"]]["input"]
        known = {**info.get("required", {}), **info.get("optional", {})}
        out[k] = {"class_type": v["class_type"], "inputs": {n: x for n, x in v["inputs"].items() if n in known}}
    return out


def test_http_api_example(server):
    """workflows/api_example.py (the README's HTTP example) returns the scores and the saved files."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zr_api_example", REPO / "workflows" / "api_example.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    object_info = server.get("/object_info")
    prompt = patch_for_tiny_run(json.loads((API_DIR / "zrealism_still.json").read_text()), object_info,
                                server.names, server.inputs, seed=int(time.time()) % 100000 + 7)
    scores, files = example.run(server.base, prompt)
    assert scores and all("overall" in s for s in scores.values()), scores
    assert files and all(f.startswith(server.base + "/view?filename=") for f in files), files
    with urllib.request.urlopen(files[0], timeout=60) as r:  # the URL serves the saved PNG
        assert r.read(8) == b"\x89PNG\r\n\x1a\n"
