"""A real ComfyUI server for the integration tests and benchmarks (subprocess + HTTP only, no ComfyUI import):
    running_server(root, name, folders) -> Server      `main.py --cpu` on a free loopback port
    wait_history(server, prompt_id)                     the prompt's /history entry once it ends
    queue_and_time_nodes(base, prompt, client_id)       POST /prompt and follow the websocket (per-node seconds)
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 600


class ComfyServerError(RuntimeError):
    pass


class Server:
    """A started server: its base URL, root folder (custom_nodes, models, input, output), process and log."""

    def __init__(self, base: str, root: Path, proc: subprocess.Popen, log: Path):
        self.base, self.root, self.proc, self.log = base, root, proc, log

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=60) as r:
            return json.loads(r.read())

    def post(self, path: str, data: Dict[str, Any]) -> Tuple[int, Any]:
        req = urllib.request.Request(self.base + path, data=json.dumps(data).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400 carries the validation errors
            return e.code, json.loads(e.read() or b"{}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def extra_model_paths_yaml(root: Path, name: str, folders: Sequence[str]) -> str:
    """An --extra-model-paths-config entry `name` whose custom_nodes and model `folders` live under `root`."""
    return (f"{name}:\n"
            f"    base_path: {root}\n"
            "    custom_nodes: custom_nodes\n"
            + "".join(f"    {f}: models/{f}\n" for f in folders))


@contextlib.contextmanager
def running_server(root: Path, name: str, folders: List[str], extra_args: Sequence[str] = (),
                   comfyui_dir: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> Iterator[Server]:
    """Start `main.py --cpu` (plus `extra_args`) of `comfyui_dir` (default $COMFYUI_DIR) with this Python on a
    free loopback port, with `root`'s custom_nodes and model `folders` (an extra-model-paths yaml named `name`),
    wait until it answers, and stop it afterwards. `env`: extra environment variables for the server."""
    comfyui_dir = comfyui_dir or os.environ["COMFYUI_DIR"]
    yaml = root / "extra_model_paths.yaml"
    yaml.write_text(extra_model_paths_yaml(root, name, folders))
    for sub in ("output", "user", "temp"):
        (root / sub).mkdir(exist_ok=True)
    port = free_port()
    log = root / "server.log"
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--disable-auto-launch", "--extra-model-paths-config", str(yaml),
           "--input-directory", str(root / "input"), "--output-directory", str(root / "output"),
           "--user-directory", str(root / "user"), "--temp-directory", str(root / "temp"), *extra_args]
    started = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=comfyui_dir, stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    srv = Server(f"http://127.0.0.1:{port}", root, proc, log)
    try:
        while True:
            if proc.poll() is not None:
                raise ComfyServerError(f"ComfyUI exited with {proc.returncode}:\n{srv.log_tail()}")
            try:
                srv.get("/system_stats")
                break
            except OSError:
                if time.perf_counter() - started > START_TIMEOUT_S:
                    raise ComfyServerError(f"ComfyUI did not answer within {START_TIMEOUT_S} s:\n{srv.log_tail()}")
                time.sleep(1)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_history(server: Server, prompt_id: str, timeout: float = RUN_TIMEOUT_S) -> Dict[str, Any]:
    """Poll /history until the prompt ended (success or error); its entry."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        hist = server.get(f"/history/{prompt_id}")
        if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
            entry = hist[prompt_id]
            if entry["status"].get("status_str") in ("success", "error"):
                return entry
        if server.proc.poll() is not None:
            raise ComfyServerError(f"ComfyUI died:\n{server.log_tail()}")
        time.sleep(0.5)
    raise ComfyServerError(f"prompt {prompt_id} did not finish in {timeout} s:\n{server.log_tail()}")


async def _queue_and_time_nodes(base: str, prompt: Dict[str, Any], client_id: str, timeout: float):
    import io

    import aiohttp
    from PIL import Image

    times: Dict[str, float] = {}
    previews: Dict[str, List[Any]] = {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base}/ws?clientId={client_id}") as ws:
            posted = time.perf_counter()
            async with session.post(f"{base}/prompt", json={"prompt": prompt, "client_id": client_id}) as r:
                status, answer = r.status, await r.json()
            if status != 200:
                return status, answer, times, previews, None
            pid, current, t0 = answer["prompt_id"], None, time.perf_counter()
            deadline, wall = t0 + timeout, None
            while time.perf_counter() < deadline:
                msg = await ws.receive(timeout=deadline - time.perf_counter())
                if msg.type != aiohttp.WSMsgType.TEXT:  # binary frames are previews
                    if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
                    # event 1 (PREVIEW_IMAGE), image type (1 JPEG), then the picture
                    if msg.type == aiohttp.WSMsgType.BINARY and msg.data[:4] == b"\0\0\0\1" and current is not None:
                        previews.setdefault(current, []).append(Image.open(io.BytesIO(msg.data[8:])).convert("RGB"))
                    continue
                m = json.loads(msg.data)
                data = m.get("data") or {}
                if data.get("prompt_id") not in (None, pid):
                    continue
                now = time.perf_counter()
                if m["type"] == "executing" or m["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                    if current is not None:
                        times[current] = times.get(current, 0.0) + now - t0
                    current, t0 = (data.get("node") if m["type"] == "executing" else None), now
                    if m["type"] != "executing" or data.get("node") is None:
                        wall = now - posted
                        break
    return status, answer, times, previews, wall


def queue_and_time_nodes(base: str, prompt: Dict[str, Any], client_id: str, timeout: float = RUN_TIMEOUT_S):
    """POST the prompt with a websocket open; time each node from its "executing" message to the next and keep
    the preview pictures each node sent. Returns (http status, answer, {node_id: seconds}, {node_id: [PIL images]},
    seconds from the POST to the prompt's end on the websocket, or None). aiohttp is one of ComfyUI's requirements."""
    return asyncio.run(_queue_and_time_nodes(base, prompt, client_id, timeout))
