"""The Celery + Redis queue on real parts: a real redis-server on a free loopback port and real
`zrealism worker` processes on the tiny models (zrealism_core.testing.fleet). No mocks, no eager mode.

Order matters inside this module (one fleet for all tests, to pay the workers' start once): the fault
tests that kill workers come last and start their replacements.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest

pytest.importorskip("celery")
pytest.importorskip("redis")

from zrealism_core.cli import main  # noqa: E402
from zrealism_core.commands.selftest import write_tiny_models_dir  # noqa: E402
from zrealism_core.imaging.images import save_image  # noqa: E402
from zrealism_core.imaging.sample import sample_character  # noqa: E402
from zrealism_core.queue import states  # noqa: E402
from zrealism_core.queue.client import Job, submit  # noqa: E402
from zrealism_core.runner import RunOptions  # noqa: E402
from zrealism_core.testing.fleet import RedisServer, Worker  # noqa: E402

TIME_LIMIT = 40  # s per job: Redis redelivers a vanished worker's job after 1.5x this (60 s)
QUICK = {"detect_resolution": 64}  # the tiny detectors at the tiny image's size (512 took most of a job on 2 busy cores)
FAST = dict(size=64, steps=4, sampler=QUICK)


class Fleet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.models = write_tiny_models_dir(root / "models")
        self.out = root / "shared"
        self.logs = root / "logs"
        self.logs.mkdir()
        self.redis = RedisServer(root / "redis").start()
        self.workers: List[Worker] = []

    def add_worker(self, name: str) -> Worker:
        w = Worker(name, self.redis.url, self.out, self.logs, models=self.models, time_limit=TIME_LIMIT)
        self.workers.append(w)
        return w

    def alive(self) -> List[Worker]:
        return [w for w in self.workers if w.proc.poll() is None]

    def logs_text(self) -> str:
        return "\n".join(w.log() for w in self.workers)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("queue"))
    try:
        for w in (f.add_worker("w1"), f.add_worker("w2")):
            w.wait_ready()
        yield f
    finally:
        f.close()


def drawing(folder: Path, i: int, size: int = 128) -> Path:
    """The i-th distinct drawing (the sample character, shifted and mirrored)."""
    img = np.roll(sample_character(size, background="flat"), 3 * i, axis=1)
    if i % 2:
        img = img[:, ::-1]
    return save_image(np.ascontiguousarray(img), folder / f"sheet_{i:02d}.png")


def watch(jobs: List[Job], timeout: float = 300) -> Dict[str, List[Tuple[str, float, int]]]:
    """Poll jobs until all are done; per job the (state, progress, step) seen, in order."""
    seen: Dict[str, List[Tuple[str, float, int]]] = {j.id: [] for j in jobs}
    end = time.monotonic() + timeout
    pending = list(jobs)
    while pending:
        assert time.monotonic() < end, {j.id: seen[j.id][-1:] for j in pending}
        for j in list(pending):
            state, meta = j.snapshot()
            entry = (state, states.progress(state, meta), int(meta.get("step", 0)))
            if not seen[j.id] or seen[j.id][-1] != entry:
                seen[j.id].append(entry)
            if state in states.DONE:
                pending.remove(j)
        time.sleep(0.01)
    return seen


def wait_for(job: Job, predicate, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not predicate(*job.snapshot()):
        assert time.monotonic() < end, f"job {job.id} stuck in {job.state} {job.meta}"
        time.sleep(0.01)


def test_snapshot_pairs_state_and_meta_from_one_read(fleet):
    """A client polling while the worker moves on must never pair a state with the next state's meta
    (two reads did, in CI: SYNTHESIZING with EVALUATING's step 0, a progress that went back)."""
    import threading

    from zrealism_core.queue.client import _app

    job = Job("snapshot-probe", fleet.redis.url)
    backend = _app(fleet.redis.url).backend
    updates = [(s, {"stage": s, "step": k, "total": 4}) for s in states.RUNNING for k in range(5)]
    done = threading.Event()

    def worker_side() -> None:
        for _ in range(20):
            for state, meta in updates:
                backend.store_result(job.id, meta, state)
        done.set()

    seen: List[Tuple[str, dict]] = []
    t = threading.Thread(target=worker_side)
    t.start()
    while not done.is_set():
        seen.append(job.snapshot())
    t.join()
    torn = [(s, m) for s, m in seen if m and m["stage"] != s]
    assert len(seen) > 200 and not torn, torn[:3]


def test_two_workers_twelve_jobs_equal_zrealism_run(fleet, tmp_path):
    from zrealism_core.models.catalog import discover
    from zrealism_core.runner import run_batch

    inputs = [drawing(tmp_path / "in", i) for i in range(12)]
    options = RunOptions(**FAST)
    jobs = [submit(p, options, broker=fleet.redis.url) for p in inputs]
    assert len({j.id for j in jobs}) == 12
    seen = watch(jobs)
    results = [j.result(timeout=5) for j in jobs]
    assert [j.state for j in jobs] == ["SUCCESS"] * 12

    # each worker ran some of the jobs
    assert {r["worker"].split("@")[0] for r in results} == {"w1", "w2"}

    for job, r in zip(jobs, results):
        # the states of each job, as the worker recorded them, are in the documented order
        names = [s for s, _ in r["states"]]
        assert names == sorted(names, key=states.order), names
        assert names[-3:] == ["ALLOCATING_VRAM", "SYNTHESIZING", "EVALUATING"], names
        assert set(names) <= set(states.RUNNING)
        # what a client polling saw: states in order, progress monotone, steps rising inside SYNTHESIZING
        polled = seen[job.id]
        orders = [states.order(s) for s, _, _ in polled]
        assert orders == sorted(orders), polled
        progress = [p for _, p, _ in polled]
        assert progress == sorted(progress), polled
        steps = [st for s, _, st in polled if s == "SYNTHESIZING"]
        assert steps == sorted(steps), polled
        assert polled[-1][0] == "SUCCESS"
    # the first job on each worker loaded the models; the later ones found them warm
    loads = [r for r in results if "LOADING_MODELS" in [s for s, _ in r["states"]]]
    assert len(loads) == 2, [r["states"] for r in results]

    # bit for bit what `zrealism run` writes for the same inputs and options (same process settings, CPU)
    models = discover(fleet.models)
    direct = run_batch(inputs, tmp_path / "direct", models, options, device="cpu", progress=False)
    for r, d in zip(results, direct):
        for name in ("result.png", "depth.png", "pose.png", "prepped.png", "report.png"):
            assert (Path(r["out_dir"]) / name).read_bytes() == (d.out_dir / name).read_bytes(), (r["out_dir"], name)
        assert r["scores"] == {k: pytest.approx(v, abs=0) for k, v in d.scores.items()}
    # nothing half-written is left in the shared folder
    assert not [p for p in fleet.out.iterdir() if p.name.startswith(".")]


def test_same_job_twice_is_cached_and_force_runs_again(fleet, tmp_path):
    from zrealism_core.queue.app import TASK_NAME
    from zrealism_core.queue.client import _app
    from zrealism_core.queue.jobs import JobSpec

    image = drawing(tmp_path, 40)
    options = RunOptions(**FAST, seed=3)
    first = submit(image, options, broker=fleet.redis.url)
    again = submit(image, options, broker=fleet.redis.url)  # while queued or running: the same job
    assert again.id == first.id and again.cached
    r1 = first.result(timeout=120)
    assert submit(image, options, broker=fleet.redis.url).id == first.id  # done: the cached result
    # a second delivery of the same job (as Redis gives after a lost ack) writes nothing again
    spec = JobSpec.for_image(image, options)
    mtime = Path(r1["files"]["result"]).stat().st_mtime_ns
    dup = Job("dup-" + first.id, fleet.redis.url)
    _app(fleet.redis.url).send_task(TASK_NAME, args=[spec.to_dict()], task_id=dup.id)
    r2 = dup.result(timeout=120)
    assert r2["cached"] and r2["out_dir"] == r1["out_dir"]
    assert Path(r1["files"]["result"]).stat().st_mtime_ns == mtime
    # --force: a new job that runs and replaces the folder with the same content
    forced = submit(image, options, broker=fleet.redis.url, force=True)
    assert forced.id != first.id
    r3 = forced.result(timeout=120)
    assert not r3["cached"] and r3["out_dir"] == r1["out_dir"]
    assert Path(r3["files"]["result"]).stat().st_mtime_ns != mtime
    assert r3["scores"] == r1["scores"]


def _run_error(argv: List[str], capsys) -> str:
    """The message `zrealism run` prints after "zrealism: error: " for the same job."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    m = re.search(r"zrealism: error: (.*)", err, re.S)
    assert m, err
    return m.group(1).strip()


def test_bad_input_fails_with_zrealism_runs_message_and_worker_goes_on(fleet, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    bad_lora = tmp_path / "broken_lora.safetensors"
    bad_lora.write_bytes(b"\x00" * 64)
    good = drawing(tmp_path, 41)
    cases = [  # (input, options, the same job's zrealism run arguments)
        (corrupt, RunOptions(**FAST), []),
        (empty, RunOptions(**FAST), []),
        (good, RunOptions(**FAST, loras=[(bad_lora, 1.0)]), ["--lora", str(bad_lora)]),  # a wrong model file
        (good, RunOptions(**FAST, denoise=1.5), ["--denoise", "1.5"]),  # an option out of range
    ]
    for image, options, extra in cases:
        job = submit(image, options, broker=fleet.redis.url)
        with pytest.raises(Exception) as info:
            job.result(timeout=120)
        assert job.state == "FAILURE"
        expected = _run_error(["run", str(image), "--models", str(fleet.models), "--out", str(tmp_path / "o"),
                               "--size", "64", "--steps", "4", "--detect-resolution", "64", "--device", "cpu", "--no-progress", *extra], capsys)
        assert job.error == expected == str(info.value)
    # both workers are still up and take the next job
    assert len(fleet.alive()) == 2
    ok = submit(drawing(tmp_path, 42), RunOptions(**FAST), broker=fleet.redis.url)
    assert ok.result(timeout=120)["scores"]
    # a failed job is not a cached result: submitting it again runs it again
    again = submit(corrupt, RunOptions(**FAST), broker=fleet.redis.url)
    with pytest.raises(Exception):
        again.result(timeout=120)


def test_cancel_stops_within_a_step_and_leaves_nothing(fleet, tmp_path):
    image = drawing(tmp_path, 43)
    job = submit(image, RunOptions(size=64, steps=400, denoise=1.0, sampler=QUICK), broker=fleet.redis.url)
    wait_for(job, lambda s, m: s == "SYNTHESIZING" and m.get("step", 0) >= 2)
    asked_at = job.meta["step"]
    job.cancel()
    with pytest.raises(Exception) as info:
        job.result(timeout=60)
    assert job.state == "FAILURE"
    m = re.search(r"cancelled after step (\d+) of (\d+)", str(info.value))
    assert m, str(info.value)
    # the flag is read at every step: it stops at the step it was running when asked, or the next
    assert int(m.group(1)) <= asked_at + 2 and int(m.group(2)) == 400
    from zrealism_core.queue.jobs import JobSpec

    name = JobSpec.for_image(image, RunOptions(size=64, steps=400, denoise=1.0, sampler=QUICK)).name
    assert not [p for p in fleet.out.iterdir() if name in p.name]
    # a job cancelled while queued never starts
    assert submit(drawing(tmp_path, 44), RunOptions(**FAST), broker=fleet.redis.url).result(timeout=120)


def test_cli_submit_status_result_cancel(fleet, tmp_path, capsys):
    folder = tmp_path / "sheets"
    drawing(folder, 50), drawing(folder, 51)
    capsys.readouterr()
    assert main(["submit", str(folder), "--broker", fleet.redis.url, "--size", "64", "--steps", "4", "--detect-resolution", "64"]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == 2
    for job_id in ids:
        Job(job_id, fleet.redis.url).result(timeout=120)
    assert main(["status", *ids, "--broker", fleet.redis.url]) == 0
    assert capsys.readouterr().out.count(": SUCCESS") == 2
    assert main(["result", ids[0], "--broker", fleet.redis.url, "--out", str(tmp_path / "got")]) == 0
    got = Path(capsys.readouterr().out.strip())
    assert got.parent == tmp_path / "got" and (got / "report.json").is_file() and (got / "result.png").is_file()
    assert main(["status", "no-such-job", "--broker", fleet.redis.url]) == 2
    assert "unknown job id" in capsys.readouterr().out


def test_poison_job_fails_after_two_attempts(fleet, tmp_path):
    """A job that kills its worker every time: here the test kills the pool child that runs it, each time
    it starts (as an out-of-memory kill would). It must fail clearly after 2 attempts, not loop."""
    import os
    import signal

    image = drawing(tmp_path, 60)
    job = submit(image, RunOptions(size=64, steps=400, denoise=1.0, sampler=QUICK), broker=fleet.redis.url)
    kills = 0
    end = time.monotonic() + 240
    while job.state not in states.DONE:
        assert time.monotonic() < end, job.state
        for line in re.findall(rf"job {job.id} started \(attempt (\d+)\) \S+ on \S+ pid (\d+)", fleet.logs_text()):
            attempt, pid = int(line[0]), int(line[1])
            if attempt > kills and attempt <= 2:
                time.sleep(0.3)  # mid-job
                os.kill(pid, signal.SIGKILL)
                kills = attempt
        time.sleep(0.05)
    assert kills == 2
    assert job.state == "FAILURE"
    assert "stopped its worker 2 times" in job.error, job.error
    starts = re.findall(rf"job {job.id} started \(attempt (\d+)\)", fleet.logs_text())
    assert sorted(map(int, starts)) == [1, 2, 3]  # the third delivery failed it at once: no loop
    time.sleep(2)
    assert len(re.findall(rf"job {job.id} started", fleet.logs_text())) == 3
    assert len(fleet.alive()) == 2
    assert submit(drawing(tmp_path, 61), RunOptions(**FAST), broker=fleet.redis.url).result(timeout=120)


def test_redis_restart_while_jobs_are_queued(fleet, tmp_path):
    images = [drawing(tmp_path, 70 + i) for i in range(6)]
    jobs = [submit(p, RunOptions(size=64, steps=20, denoise=1.0, sampler=QUICK), broker=fleet.redis.url) for p in images]
    wait_for(jobs[0], lambda s, m: s == "SYNTHESIZING")
    fleet.redis.restart(down_s=2.0)
    results = [j.result(timeout=300) for j in jobs]
    assert all(r["scores"] for r in results)
    text = fleet.logs_text()
    for j in jobs:  # none lost, none run twice
        assert len(re.findall(rf"job {j.id} SYNTHESIZING", text)) == 1, j.id
    assert len(fleet.alive()) == 2


def test_worker_killed_mid_job_is_redelivered_to_another_and_finishes_once(fleet, tmp_path):
    image = drawing(tmp_path, 80)
    options = RunOptions(size=64, steps=60, denoise=1.0, sampler=QUICK)
    job = submit(image, options, broker=fleet.redis.url)
    wait_for(job, lambda s, m: s == "SYNTHESIZING" and m.get("step", 0) >= 2)
    victim_name = job.meta["worker"].split("@")[0]
    victim = next(w for w in fleet.alive() if w.name == victim_name)
    victim.kill()  # SIGKILL to the worker and its pool child
    r = job.result(timeout=TIME_LIMIT * 1.5 + 90)
    assert not r["worker"].startswith(victim_name + "@") and r["attempt"] == 2
    folder = Path(r["out_dir"])
    for name in ("prepped.png", "mask.png", "depth.png", "pose.png", "result.png", "report.png", "report.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "report.json").read_text())["settings"]["steps"] == 60
    assert not [p for p in fleet.out.iterdir() if p.name.startswith(".")]  # the dead attempt left nothing
    text = fleet.logs_text()
    assert len(re.findall(rf"job {job.id} done in", text)) == 1
