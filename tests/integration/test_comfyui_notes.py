"""A switched-off ControlNet is said where the user reads it, on a real ComfyUI server (issue 22.3).

Skipped unless COMFYUI_DIR points to a ComfyUI checkout; run it with ComfyUI's Python:

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy-python -m pytest -q tests/integration/test_comfyui_notes.py

What it does: starts `main.py --cpu` (unbuffered, stdout and stderr into one log file, as
test_comfyui_server does) with the tiny models, then
- runs the still graph with no params connected and depth_scale 0.8, depth_start 0.9, depth_end 0.2
  (an empty window: the depth net is off), then queues it again unchanged (ComfyUI's cache runs no node,
  so nothing is logged: the one way we found for a run to succeed without the line; the cached report keeps it), and
- runs the clip graph with a detail ControlNet loaded and AnimateDiff Fuse's detail window 0.9..0.2
  (no params connected: the clip's detail net is off),
and checks that the "ControlNet off" line is in the server's log (the part written by that job) and in the
node's `report` output (shown with a core PreviewAny node, as a user wires it).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Tuple

import pytest

from test_comfyui_server import (  # noqa: F401 (pytestmark: the same skip rule)
    API_DIR, PACK_DIR_NAME, REPO, Server, patch_for_tiny_run, pytestmark, running_server, wait_history, write_inputs,
    write_models,
)

STILL_OFF = "depth ControlNet off: start >= end, an empty window (depth_start 0.9, depth_end 0.2)"
CLIP_OFF = "detail ControlNet off: start >= end, an empty window (detail_start 0.9, detail_end 0.2)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from zrealism_core.models.catalog import ANNOTATOR_FOLDER

    root = tmp_path_factory.mktemp("comfy-notes")
    (root / "custom_nodes").mkdir()
    os.symlink(REPO, root / "custom_nodes" / PACK_DIR_NAME)
    names = write_models(root / "models", native=False)
    inputs = write_inputs(root / "input")
    folders = ["checkpoints", "controlnet", "animatediff_models", "diffusers", ANNOTATOR_FOLDER]
    with running_server(root, "zrealism_notes", folders) as srv:
        srv.names, srv.inputs = names, inputs
        yield srv


def _node(prompt: Dict[str, Any], cls: str) -> str:
    return next(k for k, n in prompt.items() if n["class_type"] == cls)


def _run_with_report(server: Server, prompt: Dict[str, Any], node: str, slot: int) -> Tuple[str, str]:
    """Run `prompt` with a PreviewAny on `node`'s report output; returns (that report, the log the job wrote)."""
    prompt["900"] = {"class_type": "PreviewAny", "inputs": {"source": [node, slot]}}
    start = server.log.stat().st_size
    status, answer = server.post("/prompt", {"prompt": prompt, "client_id": "zrealism-notes"})
    assert status == 200 and answer.get("node_errors") == {}, answer
    entry = wait_history(server, answer["prompt_id"])
    assert entry["status"]["status_str"] == "success", f"{json.dumps(entry['status'])[:3000]}\n{server.log_tail()}"
    deadline = time.monotonic() + 10  # "Prompt executed in" is the worker's last line for the job
    while "Prompt executed in" not in server.log.read_bytes()[start:].decode(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    with open(server.log, "rb") as fh:
        fh.seek(start)
        log = fh.read().decode(errors="replace")
    return entry["outputs"]["900"]["text"][0], log


def test_still_says_its_depth_net_is_off(server):
    prompt = patch_for_tiny_run(json.loads((API_DIR / "zrealism_still.json").read_text()), server.get("/object_info"),
                                server.names, server.inputs, seed=int(time.time()) % 100000)
    sampler = _node(prompt, "ZRealism_DualControlNetSampler")
    del prompt[sampler]["inputs"]["params"]  # no params connected: the widgets rule
    prompt[sampler]["inputs"].update(depth_scale=0.8, depth_start=0.9, depth_end=0.2)
    report, log = _run_with_report(server, prompt, sampler, 3)
    assert f"image 1: {STILL_OFF}" in report, report
    assert f"zrealism: {STILL_OFF}" in log, log[-4000:]
    # queued again unchanged: ComfyUI runs none of the nodes (nothing is logged, issue 22.3's lost line),
    # and the cached report still says it
    again, log = _run_with_report(server, prompt, sampler, 3)
    assert f"image 1: {STILL_OFF}" in again, again
    assert "zrealism:" not in log, f"the sampler ran again: this test no longer shows the cached case\n{log[-4000:]}"


def test_clip_says_its_detail_net_is_off(server):
    prompt = patch_for_tiny_run(json.loads((API_DIR / "zrealism_video.json").read_text()), server.get("/object_info"),
                                server.names, server.inputs, seed=int(time.time()) % 100000 + 1)
    loader = _node(prompt, "ZRealism_ModelLoader")
    prompt[loader]["inputs"]["detail_controlnet"] = server.names["detail"]
    fuse = _node(prompt, "ZRealism_AnimateDiffFuse")
    del prompt[fuse]["inputs"]["params"]  # with params connected (and a detail net loaded) they set detail_scale
    prompt[fuse]["inputs"].update(detail_scale=0.8, detail_start=0.9, detail_end=0.2)
    report, log = _run_with_report(server, prompt, fuse, 2)
    assert f"clip 1: {CLIP_OFF}" in report, report
    assert f"zrealism: {CLIP_OFF}" in log, log[-4000:]
