"""The Celery app: one broker URL for the queue and the results (Redis), settings for long GPU jobs.

Why each setting (README "Running at scale" repeats this):
- worker_concurrency 1: one job at a time per worker, so one worker per device is the "one job per
  device" rule. (Prefork with one child rather than the solo pool: only prefork enforces time limits.)
- worker_prefetch_multiplier 1: a worker holds only the job it runs; the rest stay in Redis for the
  next free worker instead of queueing behind a long job.
- task_acks_late: the job is acknowledged after it ran, so a worker that dies mid-job (killed, out of
  memory, machine lost) leaves it in Redis to be delivered again.
- task_reject_on_worker_lost: when the pool child dies, the job is requeued at once (not marked failed).
- task_time_limit / task_soft_time_limit: a stuck job fails (soft: a clean error; hard: the child is killed).
- visibility_timeout (1.5 x the hard limit): Redis hands an unacknowledged job to another worker only
  after this long; it must be longer than any job may run, or a slow live job would run twice.
- unacked_restore_interval: how often workers look for jobs whose worker vanished.
- broker_connection_max_retries None: after a Redis restart, workers reconnect for as long as it takes;
  result_backend_always_retry: a state or result written while Redis is down waits and retries
  (a job running through a restart goes on and stores its result once Redis is back).
- task_track_started False and our own states (states.py) instead; json only (no pickle).
"""
from __future__ import annotations

from typing import Any

TASK_NAME = "zrealism.run_job"
DEFAULT_TIME_LIMIT = 3600  # seconds, a hard limit per job (the clip at 1024 on a slow GPU stays well under)
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
RESULT_EXPIRES = 7 * 24 * 3600  # results (and the submit cache) are kept a week


def require_celery() -> None:
    """Celery and the Redis client are the optional `queue` extra: say how to get them."""
    from ..errors import ZRealismError

    try:
        import celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise ZRealismError(f"the queue needs Celery and the Redis client ({exc.name} is missing): "
                            'pip install "zrealism[queue]"') from None


def make_app(broker: str = DEFAULT_BROKER, *, time_limit: float = DEFAULT_TIME_LIMIT) -> Any:
    require_celery()
    from celery import Celery

    time_limit = float(time_limit)
    visibility = int(time_limit * 1.5) + 1
    app = Celery("zrealism", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        worker_concurrency=1,
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=time_limit,
        task_soft_time_limit=max(1.0, time_limit * 0.9),
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, visibility // 4)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": visibility},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        result_backend_always_retry=True,
        result_backend_max_retries=600,
        result_expires=RESULT_EXPIRES,
        result_extended=True,
        task_track_started=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_default_queue="zrealism",
    )
    return app
