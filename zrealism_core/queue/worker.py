"""The worker side: the Celery task that runs one job, and the worker process set-up.

A worker serves one device. Its models are loaded lazily, in the pool's child process at the first
job (never before the fork: a CUDA context made before fork breaks the child), and kept warm for the
next jobs. Each job runs exactly as `zrealism run` runs it (runner.run_image), in a hidden `.part`
folder renamed into place when complete, so a killed job leaves nothing half-written under its name.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import states
from .jobs import JobSpec, is_complete, options_from_dict, output_dir
from ..errors import CancelledError, ZRealismError

log = logging.getLogger("zrealism")


@dataclass
class WorkerConfig:
    broker: str
    out: Path
    models: Optional[Path] = None  # local mode: a ComfyUI-style models folder
    device: str = "auto"
    dtype: str = "auto"
    comfy: Optional[str] = None  # ComfyUI mode: the server's URL
    workflow: Optional[Path] = None  # ComfyUI mode: an API workflow of the user's (default: the shipped one)
    video_workflow: Optional[Path] = None  # the same, for --video jobs
    time_limit: float = 3600.0


_config: Optional[WorkerConfig] = None
_executor: Any = None  # made in the pool's child at its first job, then kept (warm models)


def configure(config: WorkerConfig) -> None:
    global _config
    _config = config


def _get_executor() -> Any:
    global _executor
    if _executor is None:
        assert _config is not None, "zrealism worker: configure() was not called"
        if _config.comfy:
            from .comfy import ComfyExecutor

            _executor = ComfyExecutor(_config)
        else:
            _executor = LocalExecutor(_config)
    return _executor


class LocalExecutor:
    """Runs jobs in this process on the worker's models (one pipeline, kept warm between jobs)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.pipe: Any = None
        self.pipe_key: Any = None
        self.motion: Any = None
        self.models = self._models()

    def _models(self) -> Any:
        from ..models.catalog import ModelPaths, discover

        if self.config.models is None:
            return ModelPaths()
        return discover(self.config.models)

    @property
    def device(self) -> str:
        return self.config.device

    def _embedding_dirs(self, options: Any) -> List[Path]:
        extra = self.config.models / "embeddings" if self.config.models else None
        dirs = list(options.embedding_dirs)
        return dirs + [extra] if extra is not None and extra.is_dir() and extra not in dirs else dirs

    def needs_loading(self, options: Any) -> bool:
        key = (tuple(map(str, self._embedding_dirs(options))), int(options.clip_skip))
        return self.pipe is None or key != self.pipe_key or (options.video and self.motion is None)

    def load(self, options: Any) -> None:
        from ..runner import check_models, load_models

        check_models(self.models, video=options.video, models_dir=self.config.models)
        dirs = self._embedding_dirs(options)
        key = (tuple(map(str, dirs)), int(options.clip_skip))
        if self.pipe is None or key != self.pipe_key:
            self.pipe = None  # the old pipeline goes before the new one is loaded
            self.pipe = load_models(self.models, device=self.config.device, dtype=self.config.dtype,
                                    embedding_dirs=dirs, clip_skip=options.clip_skip)
            self.pipe_key = key
        if options.video and self.motion is None:
            from ..models.motion import as_motion_model

            self.motion = as_motion_model(self.models.motion_adapter)

    def run(self, path: Path, folder: Path, options: Any, cancel: Callable[[], bool], on_event: Callable[..., None]) -> None:
        from ..runner import run_image

        run_image(path, folder, self.pipe, options, motion_adapter=self.motion if options.video else None,
                  progress=False, cancel=cancel, on_event=on_event)


class JobRun:
    """One delivery of one job: its states, its cancel flag, its folders."""

    def __init__(self, task: Any, spec: JobSpec, store: Any, attempt: int) -> None:
        self.task, self.spec, self.store, self.attempt = task, spec, store, attempt
        self.job_id = task.request.id
        self.worker = f"{task.request.hostname or socket.gethostname()} pid {os.getpid()}"
        self.t0 = time.perf_counter()
        self.state = states.PENDING
        self.history: List[List[Any]] = []
        self.meta: Dict[str, Any] = {}

    def report(self, state: str, stage: str = "", step: int = 0, total: int = 0, **extra: Any) -> None:
        """Publish a state with its meta; states only move forward within one attempt."""
        if states.order(state) < states.order(self.state):
            state = self.state
        if state != self.state:
            self.history.append([state, round(time.perf_counter() - self.t0, 3)])
            log.info("zrealism worker: job %s %s (attempt %d)", self.job_id, state, self.attempt)
        self.state = state
        self.meta.update(extra)
        self.meta.update(stage=stage, step=int(step), total=int(total), attempt=self.attempt, worker=self.worker)
        self.meta.setdefault("device", _executor.device if _executor is not None else _config.device)
        self.meta.setdefault("notes", [])
        self.task.update_state(state=state, meta=dict(self.meta, states=list(self.history)))

    def on_event(self, stage: str, step: int, total: int, info: Dict[str, Any]) -> None:
        extra: Dict[str, Any] = {}
        if stage == "place":
            extra = {"device": info.get("device"), "memory_mb": info.get("memory_mb")}
        self.report(states.STAGE_STATES.get(stage, self.state), stage, step, total, **extra)

    def cancel_requested(self) -> bool:
        return self.store.cancel_requested(self.job_id) is not None


def _result(folder: Path, run: JobRun, cached: bool) -> Dict[str, Any]:
    """The small JSON result: paths, the Fidelity report, the notes, the timings (no pixels)."""
    doc = json.loads((folder / "report.json").read_text())
    return {
        "out_dir": str(folder),
        "files": {k: str(folder / name) for k, name in doc.get("files", {}).items()} | {"report": str(folder / "report.json")},
        "scores": doc.get("still", {}).get("scores", {}),
        "report": doc.get("still"),
        "video_report": doc.get("video"),
        "notes": doc.get("notes"),
        "device": doc.get("device"),
        "timings_s": doc.get("timings_s"),
        "states": run.history,
        "worker": run.worker,
        "attempt": run.attempt,
        "cached": cached,
        "job_s": round(time.perf_counter() - run.t0, 3),
    }


def _clear_parts(out: Path, name: str, job_id: str) -> None:
    """Remove what earlier attempts of this job left (a worker killed while it wrote)."""
    for p in out.glob(f".{name}.part-{job_id}-*"):
        shutil.rmtree(p, ignore_errors=True)


def _publish(part: Path, final: Path, force: bool) -> bool:
    """Rename the complete .part folder into place. False when another delivery got there first."""
    old = None
    if force and final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    try:
        part.rename(final)
    except OSError:
        if is_complete(final):
            shutil.rmtree(part, ignore_errors=True)
            return False
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return True


def run_job(task: Any, spec_dict: Dict[str, Any]) -> Dict[str, Any]:
    """The Celery task body (app.TASK_NAME)."""
    from celery.exceptions import SoftTimeLimitExceeded

    from .store import MAX_ATTEMPTS, Store

    assert _config is not None
    spec = JobSpec.from_dict(spec_dict)
    store = Store(_config.broker)
    attempt = store.start_attempt(task.request.id)
    run = JobRun(task, spec, store, attempt)
    log.info("zrealism worker: job %s started (attempt %d) %s on %s", run.job_id, attempt, Path(spec.input).name, run.worker)
    out = Path(_config.out)
    final = output_dir(out, spec)
    try:
        if attempt > MAX_ATTEMPTS:
            raise ZRealismError(
                f"job {run.job_id} ({Path(spec.input).name}) stopped its worker {attempt - 1} times without "
                f"finishing (killed: out of memory, a crash, or a stop?): not trying it again. See the workers' "
                f"logs for the job id; fix the input or the worker, then submit it again.")
        if run.cancel_requested():
            raise CancelledError("cancelled before it started")
        if not spec.force and is_complete(final, spec.options):
            log.info("zrealism worker: job %s: %s is complete already, not run again", run.job_id, final.name)
            return _result(final, run, cached=True)
        options = options_from_dict(spec.options)
        path = spec.check_input()
        executor = _get_executor()
        if executor.needs_loading(options):
            run.report(states.LOADING_MODELS, "load models")
            executor.load(options)
        _clear_parts(out, spec.name, run.job_id)
        part = out / f".{spec.name}.part-{run.job_id}-{attempt}"
        try:
            executor.run(path, part, options, run.cancel_requested, run.on_event)
            if not _publish(part, final, spec.force):
                log.info("zrealism worker: job %s: another delivery finished %s first", run.job_id, final.name)
        finally:
            shutil.rmtree(part, ignore_errors=True)
        log.info("zrealism worker: job %s done in %.2f s -> %s", run.job_id, time.perf_counter() - run.t0, final)
        return _result(final, run, cached=False)
    except SoftTimeLimitExceeded:
        store.forget_key(spec.key, run.job_id)
        raise ZRealismError(f"job {run.job_id} ran past the worker's time limit of {_config.time_limit:g} s "
                            "(zrealism worker --time-limit)") from None
    except CancelledError as exc:
        store.forget_key(spec.key, run.job_id)
        log.info("zrealism worker: job %s %s", run.job_id, exc)
        raise
    except Exception as exc:
        store.forget_key(spec.key, run.job_id)
        log.error("zrealism worker: job %s failed: %s", run.job_id, exc)
        raise


def register(app: Any) -> Any:
    from .app import TASK_NAME

    return app.task(name=TASK_NAME, bind=True)(run_job)
