"""ComfyUI's "free memory" really frees our models (real server, CPU).

Skipped unless COMFYUI_DIR points to a ComfyUI checkout. Heavy (two graph runs, ~0.5 GB of weights):
run it under the shared lock,

    COMFYUI_DIR=/work/comfyui flock /tmp/zr_heavy.lock python -m pytest -q -s tests/integration/test_comfyui_memory.py

What it does: starts `main.py --cpu` with the tiny models of test_comfyui_server plus full-size (random)
OpenPose files (~0.5 GB: measurable ballast that is also a detector), and a test-only probe node
(memory_probe_node.py, copied into the server's temporary custom_nodes; not part of the pack) that takes weak
references to everything the job loaded: the pipeline, each of its modules and ModelPatchers, and every
detector (and its modules) in the pack's own stores. It runs the still graph with the probe, posts
`/free {"unload_models": true, "free_memory": true}`, and checks what the feature promises
(`released_problems`):
- every recorded object was garbage-collected (the probe's GET /zrealism_test/alive, after gc.collect());
- none of ComfyUI's current_loaded_models holds one of our modules;
- RSS after /free is within 1.5 GB of idle (RSS before the first job).
Then it runs the graph again (the models load again). A second test plants a leak (the probe keeps the
pipeline's detectors alive) and checks that `released_problems` reports it.
The figures are printed (and appended as JSON lines to ZR_MEMORY_JSON when set).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

from test_comfyui_server import (
    API_DIR, COMFYUI_DIR, PACK_DIR_NAME, REPO, Server, patch_for_tiny_run, running_server, wait_history, write_inputs,
    write_models,
)

pytestmark = pytest.mark.skipif(
    not COMFYUI_DIR or not (Path(COMFYUI_DIR) / "main.py").is_file(),
    reason="set COMFYUI_DIR to a ComfyUI checkout to run the server integration test",
)

GB = 2**30
MB = 2**20
PROBE = Path(__file__).with_name("memory_probe_node.py")


def rss(pid: int, field: str = "VmRSS") -> int:
    """Resident set size of a process in bytes (Linux /proc): VmRSS, or one of its parts (RssAnon, RssFile)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


def settled_rss(pid: int, seconds: float = 20.0) -> int:
    """RSS once it stops falling (ComfyUI collects garbage right after /free; give it a moment)."""
    last, t0 = rss(pid), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        time.sleep(2.0)
        now = rss(pid)
        if abs(now - last) < 8 * MB:
            return now
        last = now
    return last


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from zrealism_core.models.catalog import ANNOTATOR_FOLDER
    from zrealism_core.testing import tiny_annotators

    root = tmp_path_factory.mktemp("comfy-mem")
    (root / "custom_nodes").mkdir()
    os.symlink(REPO, root / "custom_nodes" / PACK_DIR_NAME)
    shutil.copy(PROBE, root / "custom_nodes" / "zrealism_memory_probe.py")
    names = write_models(root / "models", native=False)
    ballast = tiny_annotators.write_openpose_files(root / "models" / ANNOTATOR_FOLDER, compact=False)  # full size
    inputs = write_inputs(root / "input")
    folders = ["checkpoints", "controlnet", "animatediff_models", "diffusers", ANNOTATOR_FOLDER]
    with running_server(root, "zrealism_mem", folders) as srv:
        srv.names, srv.inputs = names, inputs
        srv.ballast = sum(p.stat().st_size for p in ballast.values())
        srv.idle = settled_rss(srv.proc.pid, 10)  # before the first job
        yield srv


def _run_still(server: Server, seed: int, hold: str = "nothing") -> None:
    """The still graph, with the probe fed its pipe and its result (so it records after the job)."""
    prompt = patch_for_tiny_run(json.loads((API_DIR / "zrealism_still.json").read_text()), server.get("/object_info"),
                                server.names, server.inputs, seed=seed)
    loader = next(k for k, n in prompt.items() if n["class_type"] == "ZRealism_ModelLoader")
    sampler = next(k for k, n in prompt.items() if n["class_type"] == "ZRealism_DualControlNetSampler")
    prompt["950"] = {"class_type": "ZRealismTest_MemoryProbe", "inputs": {"pipe": [loader, 0], "after": [sampler, 0], "hold": hold}}
    status, answer = server.post("/prompt", {"prompt": prompt, "client_id": "zrealism-memory"})
    assert status == 200 and answer.get("node_errors") == {}, answer
    entry = wait_history(server, answer["prompt_id"])
    assert entry["status"]["status_str"] == "success", f"{json.dumps(entry['status'])[:3000]}\n{server.log_tail()}"


def _free(server: Server) -> None:
    req = urllib.request.Request(server.base + "/free", data=json.dumps({"unload_models": True, "free_memory": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:  # answers 200 with an empty body
        assert r.status == 200


def _alive(server: Server, seconds: float = 20.0) -> Dict[str, Any]:
    """The probe's answer once ComfyUI has handled /free (its worker unloads and resets between jobs):
    polled until nothing recorded is alive, or `seconds` passed (then the survivors are the answer)."""
    t0 = time.perf_counter()
    while True:
        doc = server.get("/zrealism_test/alive")
        if (not doc["alive"] and not doc["loaded_models"]) or time.perf_counter() - t0 > seconds:
            return doc
        time.sleep(1.0)


# what a job must have loaded, as the probe labels it (a probe that recorded nothing would prove nothing)
EXPECTED = ["pipeline", "module unet", "module controlnet_depth", "module controlnet_pose", "module vae", "module text_encoder",
            "pipeline store detector openpose", "pipeline store detector openpose module 0"]


def released_problems(alive: Dict[str, Any], idle: int, after_free: int) -> List[str]:
    """What breaks the promise of POST /free, one line each ([] = kept): a recorded module or detector still
    alive, one of our models still in ComfyUI's current_loaded_models, RSS more than 1.5 GB above idle."""
    problems = []
    if alive["alive"]:
        problems.append(f"alive after /free: {', '.join(alive['alive'])}")
    if alive["loaded_models"]:
        problems.append(f"{alive['loaded_models']} of our modules still in ComfyUI's current_loaded_models")
    if after_free - idle >= 1.5 * GB:
        problems.append(f"RSS after /free {after_free / MB:.0f} MB is 1.5 GB or more above idle {idle / MB:.0f} MB")
    return problems


def _job_then_free(server: Server, seed: int, hold: str = "nothing") -> Dict[str, Any]:
    pid = server.proc.pid
    before = settled_rss(pid, 10)
    _run_still(server, seed, hold)
    after_job = settled_rss(pid, 10)
    loaded = server.get("/zrealism_test/alive")
    _free(server)
    alive = _alive(server)
    after_free = settled_rss(pid)
    figures: Dict[str, Any] = {
        "hold": hold, "rss idle (MB)": round(server.idle / MB), "rss before job (MB)": round(before / MB),
        "rss after job (MB)": round(after_job / MB), "rss after /free (MB)": round(after_free / MB),
        "ballast weights (MB)": round(server.ballast / MB), "recorded": loaded["recorded"],
        "openpose in the store at the probe": loaded.get("openpose was in the store"),
        "alive after job": len(loaded["alive"]), "loaded models after job": loaded["loaded_models"],
        "alive after /free": alive["alive"], "loaded models after /free": alive["loaded_models"],
    }
    figures["problems"] = released_problems(alive, server.idle, after_free)
    figures["_loaded"] = loaded
    return figures


def _report(figures: Dict[str, Any]) -> None:
    shown = {k: v for k, v in figures.items() if not k.startswith("_")}
    print("\nZ-Realism memory figures:", json.dumps(shown, indent=2))
    if os.environ.get("ZR_MEMORY_JSON"):
        with open(os.environ["ZR_MEMORY_JSON"], "a") as fh:
            fh.write(json.dumps(shown) + "\n")


def test_free_memory_releases_our_models(server):
    figures = _job_then_free(server, seed=11)
    _run_still(server, seed=12)  # runs again after the release (models loaded again)
    figures["rss after second job (MB)"] = round(settled_rss(server.proc.pid, 10) / MB)
    _report(figures)
    loaded = figures["_loaded"]
    assert set(EXPECTED) <= set(loaded["recorded"]), loaded["recorded"]  # the probe saw what the job loaded ...
    # ... alive until /free; ComfyUI may evict a detector for room on its own (the probe loads it again, so one
    # is always recorded), which is a release too: only the pipeline and its modules must be alive here
    evicted = set(loaded["recorded"]) - set(loaded["alive"])
    assert all(" detector " in name for name in evicted) and loaded["loaded_models"] > 0, loaded
    assert figures["problems"] == [], figures


def test_a_detector_kept_alive_fails_the_check(server):
    """The planted leak: the probe keeps the pipeline's detectors; released_problems must say so."""
    try:
        figures = _job_then_free(server, seed=21, hold="detector")
    finally:
        server.post("/zrealism_test/let_go", {})
    _report(figures)
    assert figures["problems"], figures
    assert any("pipeline store detector openpose" in p for p in figures["problems"]), figures["problems"]
    # only what the leak holds survives: the pipeline itself and its modules were still released
    assert "pipeline" not in figures["alive after /free"] and "module unet" not in figures["alive after /free"], figures
