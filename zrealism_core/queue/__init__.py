"""Scale-out on Celery + Redis: `pip install "zrealism[queue]"`, then `zrealism worker` / `submit` /
`status` / `result` / `cancel`, or from Python:

    from zrealism_core.queue import submit
    job = submit("sheet.png", broker="redis://127.0.0.1:6379/0")
    job.state, job.progress, job.result(timeout=600), job.cancel()

The states a job goes through are in states.STATES (README "Running at scale"). Importing this
package needs neither Celery nor Redis; using it does (app.require_celery says how to get them).
"""
from __future__ import annotations

from typing import Any

from .states import STATES


def submit(*args: Any, **kwargs: Any) -> Any:
    from .client import submit as _submit

    return _submit(*args, **kwargs)


def job(job_id: str, broker: str) -> Any:
    """The Job with this id (to follow a job another process submitted)."""
    from .client import Job

    return Job(job_id, broker)


__all__ = ["STATES", "job", "submit"]
