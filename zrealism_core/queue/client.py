"""The client side: submit jobs, watch them, fetch their files, cancel them.

    from zrealism_core.queue import submit
    job = submit("sheet.png", broker="redis://127.0.0.1:6379/0", steps=20, video=True)
    job.state, job.progress          # "SYNTHESIZING", 0.41
    result = job.result(timeout=600)  # the small JSON result (paths, report, notes, timings)
    job.cancel()
"""
from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import states
from .app import DEFAULT_BROKER, TASK_NAME, make_app
from .jobs import JobSpec
from ..errors import InputError, ZRealismError
from ..runner import RunOptions

_apps: Dict[str, Any] = {}


def _app(broker: str) -> Any:
    if broker not in _apps:
        _apps[broker] = make_app(broker)
    return _apps[broker]


class Job:
    """A submitted job, by id. Every property reads the result backend afresh."""

    def __init__(self, job_id: str, broker: str = DEFAULT_BROKER, *, cached: bool = False) -> None:
        from .store import Store

        self.id = job_id
        self.broker = broker
        self.cached = cached  # submit found the same job already queued or done
        self._async = _app(broker).AsyncResult(job_id)
        self._store = Store(broker)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, state={self.state!r})"

    @property
    def known(self) -> bool:
        """Whether this id was submitted (Celery says PENDING for any unknown id)."""
        return self._store.submitted(self.id) is not None or self._async.state != states.PENDING

    def snapshot(self) -> Tuple[str, Dict[str, Any]]:
        """(state, meta) from one read of the result backend. Read state and meta together: two reads
        can straddle an update and pair one state with the next state's meta (a progress that goes back)."""
        doc = self._async.backend.get_task_meta(self.id)
        state, info = str(doc.get("status", states.PENDING)), doc.get("result")
        return state, (dict(info) if isinstance(info, dict) and state in states.RUNNING else {})

    @property
    def state(self) -> str:
        return self.snapshot()[0]

    @property
    def meta(self) -> Dict[str, Any]:
        """{stage, step, total, device, notes, attempt, worker, states} while running; {} otherwise."""
        return self.snapshot()[1]

    @property
    def progress(self) -> float:
        return states.progress(*self.snapshot())

    @property
    def error(self) -> Optional[str]:
        """The failure's message (as `zrealism run` prints it after "error:"), or None."""
        return str(self._async.info) if self.state == states.FAILURE else None

    def result(self, timeout: Optional[float] = None, poll: float = 0.1) -> Dict[str, Any]:
        """Wait for the job; its result dict on SUCCESS, else raise its error (a ZRealismError subclass
        for the failures `zrealism run` reports) or TimeoutError."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state
            if state == states.SUCCESS:
                return dict(self._async.result)
            if state == states.FAILURE:
                exc = self._async.result
                raise exc if isinstance(exc, BaseException) else ZRealismError(str(exc))
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"job {self.id} is still {state} after {timeout} s")
            time.sleep(poll)

    def cancel(self) -> None:
        """Stop the job at its next step (or before it starts); it ends in FAILURE, with no files."""
        state, meta = self.snapshot()
        self._store.request_cancel(self.id, {"at": time.time(), "state": state,
                                             "step": meta.get("step", 0), "stage": meta.get("stage", "")})

    def fetch(self, dest: Path, timeout: Optional[float] = None) -> Path:
        """Copy the job's files from the shared output folder into dest/<job folder name>/."""
        result = self.result(timeout)
        src = Path(result["out_dir"])
        if not src.is_dir():
            raise InputError(f"the job's output folder is not reachable from here: {src} (--out must be a "
                             "folder all workers and clients share)")
        target = Path(dest) / src.name
        tmp = target.with_name(f".{target.name}.part")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
        return target


def submit(image: Any, options: Optional[RunOptions] = None, *, broker: str = DEFAULT_BROKER,
           force: bool = False, **option_fields: Any) -> Job:
    """Queue one image (a path every worker can read). options: RunOptions, or its fields as keywords.
    The same image with the same options gives back the job already queued or done, unless force."""
    from .store import Store

    if options is None:
        options = RunOptions(**option_fields)
    elif option_fields:
        raise TypeError("give options or option fields, not both")
    spec = JobSpec.for_image(Path(image), options, force=force)
    store = Store(broker)
    job_id = str(uuid.uuid4())
    existing = store.claim_key(spec.key, job_id, force)
    if existing is not None:
        old = Job(existing, broker, cached=True)
        if old.state != states.FAILURE and old.known:
            return old
        store.claim_key(spec.key, job_id, force=True)  # the earlier one failed or expired: run it again
    store.record_submitted(job_id, spec.to_dict())
    _app(broker).send_task(TASK_NAME, args=[spec.to_dict()], task_id=job_id)
    return Job(job_id, broker)


def submit_many(images: Iterable[Any], options: Optional[RunOptions] = None, *, broker: str = DEFAULT_BROKER,
                force: bool = False) -> List[Job]:
    return [submit(p, options or RunOptions(), broker=broker, force=force) for p in images]
