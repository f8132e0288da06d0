"""`zrealism worker --comfy`: the queue feeding a real ComfyUI server (issue 19).

A real redis-server, a real ComfyUI `main.py --cpu` with this pack and tiny models (the server test's
set-up), and one `zrealism worker --comfy URL` process. Jobs submitted to the queue run as the shipped
API workflows on the server (patched to the tiny model files, as test_comfyui_server does, and given
to the worker with --workflow / --video-workflow); the worker reports our states from the server's
websocket and brings back the files and the Fidelity report.

    COMFYUI_DIR=/path/to/ComfyUI /path/to/comfy-python -m pytest tests/integration/test_queue_comfy.py -q
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest.importorskip("celery")
pytest.importorskip("websocket")

from test_comfyui_server import API_DIR, patch_for_tiny_run, pytestmark, server  # noqa: E402,F401 (skip rule, fixture)

from zrealism_core.queue import states  # noqa: E402
from zrealism_core.queue.client import submit  # noqa: E402
from zrealism_core.runner import RunOptions  # noqa: E402
from zrealism_core.testing.fleet import RedisServer, Worker  # noqa: E402


def _poll(job, timeout=600):
    seen = []
    end = time.monotonic() + timeout
    while True:
        state, meta = job.snapshot()
        entry = (state, int(meta.get("step", 0)), int(meta.get("total", 0)))
        if not seen or seen[-1] != entry:
            seen.append(entry)
        if state in states.DONE:
            return seen
        assert time.monotonic() < end, seen[-3:]
        time.sleep(0.02)


def test_comfy_worker_runs_queued_jobs_on_the_server(server, tmp_path):  # noqa: F811
    object_info = server.get("/object_info")
    workflows = {}
    for stem in ("zrealism_still", "zrealism_video"):
        prompt = patch_for_tiny_run(json.loads((API_DIR / f"{stem}.json").read_text()), object_info, server.names,
                                    server.inputs, seed=7)
        workflows[stem] = tmp_path / f"{stem}.json"
        workflows[stem].write_text(json.dumps(prompt))
    drawing = server.root / "input" / server.inputs["image"]
    with RedisServer(tmp_path / "redis") as redis:
        worker = Worker("comfy1", redis.url, tmp_path / "shared", tmp_path, comfy=server.base, time_limit=600,
                        extra=["--workflow", str(workflows["zrealism_still"]),
                               "--video-workflow", str(workflows["zrealism_video"])])
        try:
            worker.wait_ready()
            still = submit(drawing, RunOptions(size=64, seed=1), broker=redis.url)
            explicit = submit(drawing, RunOptions(size=64, seed=2, steps=3, denoise=1.0), broker=redis.url)
            clip = submit(drawing, RunOptions(size=64, seed=3, video=True, frames=4, video_steps=2), broker=redis.url)
            seen = {j.id: _poll(j) for j in (still, explicit, clip)}
            results = {j.id: j.result(timeout=5) for j in (still, explicit, clip)}
        finally:
            worker.stop()
    log = worker.log()
    for job in (still, explicit, clip):
        r = results[job.id]
        folder = Path(r["out_dir"])
        for name in ("result.png", "report.json", "report.png", "prepped.png", "depth.png", "pose.png"):
            assert (folder / name).is_file(), (name, log[-3000:])
        assert 0.0 <= r["scores"]["overall"] <= 1.0 and set(r["scores"]) >= {"silhouette", "edge", "color"}
        names = [s for s, _ in r["states"]]
        assert names == sorted(names, key=states.order) and "SYNTHESIZING" in names and names[-1] == "EVALUATING", names
        polled = [s for s, _, _ in seen[job.id]]
        assert [states.order(s) for s in polled] == sorted(states.order(s) for s in polled), seen[job.id]
        steps = [(st, tot) for s, st, tot in seen[job.id] if s == "SYNTHESIZING" and tot]
        assert steps and [st for st, _ in steps] == sorted(st for st, _ in steps), seen[job.id]
        doc = json.loads((folder / "report.json").read_text())
        assert doc["comfy"]["server"] == server.base and doc["still"]["scores"] == r["scores"]
    # explicit steps win over the analyzer's (its params link is removed in the posted copy)
    assert max(tot for s, _, tot in seen[explicit.id] if s == "SYNTHESIZING") == 3
    # the clip: ANIMATING with its steps, the clip file and a temporal score
    clip_r = results[clip.id]
    assert "ANIMATING" in [s for s, _ in clip_r["states"]]
    assert Path(clip_r["files"]["video"]).is_file() and 0.0 <= clip_r["video_report"]["scores"]["temporal"] <= 1.0
