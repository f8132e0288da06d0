"""What the queue keeps in Redis beside Celery's own keys: small records under `zrealism:`.

- attempts:<id>  how many times a worker started the job (the broker keeps no count; poison jobs)
- cancel:<id>    set by `zrealism cancel`; the worker checks it between stages and at every step
- job:<key>      the id of the job with that key (jobs.JobSpec.key), the submit cache
- submitted:<id> the job's spec, so `zrealism status` can tell a queued job from an unknown id
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

from .app import RESULT_EXPIRES

PREFIX = "zrealism:"
MAX_ATTEMPTS = 2  # a job whose worker died this many times is failed, not delivered again


def connect(broker: str) -> Any:
    """A client that rides out a Redis restart (retries with backoff for about two minutes)."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(broker, socket_connect_timeout=5, health_check_interval=10,
                                retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), 60),
                                retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError])


class Store:
    def __init__(self, broker: str) -> None:
        self.client = connect(broker)

    def start_attempt(self, job_id: str) -> int:
        key = f"{PREFIX}attempts:{job_id}"
        n = int(self.client.incr(key))
        self.client.expire(key, RESULT_EXPIRES)
        return n

    def request_cancel(self, job_id: str, info: Dict[str, Any]) -> None:
        self.client.set(f"{PREFIX}cancel:{job_id}", json.dumps(info), ex=RESULT_EXPIRES)

    def cancel_requested(self, job_id: str) -> Optional[Dict[str, Any]]:
        raw = self.client.get(f"{PREFIX}cancel:{job_id}")
        return json.loads(raw) if raw else None

    def cached_job(self, key: str) -> Optional[str]:
        raw = self.client.get(f"{PREFIX}job:{key}")
        return raw.decode() if raw else None

    def claim_key(self, key: str, job_id: str, force: bool) -> Optional[str]:
        """Record job_id for key; returns the id already recorded (the cached job) unless force."""
        name = f"{PREFIX}job:{key}"
        if force:
            self.client.set(name, job_id, ex=RESULT_EXPIRES)
            return None
        if self.client.set(name, job_id, nx=True, ex=RESULT_EXPIRES):
            return None
        return self.cached_job(key)

    def forget_key(self, key: str, job_id: str) -> None:
        """A failed job is not a cached result: the next submit runs it again."""
        name = f"{PREFIX}job:{key}"
        if self.cached_job(key) == job_id:
            self.client.delete(name)

    def record_submitted(self, job_id: str, spec: Dict[str, Any]) -> None:
        self.client.set(f"{PREFIX}submitted:{job_id}", json.dumps(spec), ex=RESULT_EXPIRES)

    def submitted(self, job_id: str) -> Optional[Dict[str, Any]]:
        raw = self.client.get(f"{PREFIX}submitted:{job_id}")
        return json.loads(raw) if raw else None
