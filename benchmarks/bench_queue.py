"""The queue's cost (issue 19): per-job overhead against a direct `zrealism run`, throughput with 1 and 2
workers, and the time from submit to the first state a client sees. Real redis-server, real
`zrealism worker` processes, the tiny models (zrealism_core.testing.fleet), CPU.

Goal: overhead <= 0.3 s per job plus <= 3 %. On a 2-core machine two workers share the cores, so
their throughput shows the queue's fairness rather than a speed-up.

    python -m benchmarks.bench_queue [--jobs 8] [--size 64] [--steps 4]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the tests: the direct run and the workers alike


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args(argv)

    import numpy as np

    from zrealism_core.commands.selftest import write_tiny_models_dir
    from zrealism_core.imaging.images import save_image
    from zrealism_core.imaging.sample import sample_character
    from zrealism_core.models.catalog import discover
    from zrealism_core.queue import states
    from zrealism_core.queue.client import submit
    from zrealism_core.runner import RunOptions, load_models, run_image
    from zrealism_core.testing.fleet import RedisServer, Worker

    root = Path(tempfile.mkdtemp(prefix="zr_bench_queue_"))
    models_dir = write_tiny_models_dir(root / "models")
    base = sample_character(128, background="flat")

    made = [0]

    def images(tag: str, n: int):
        """n drawings never used before (a repeated one would be the queue's cached result)."""
        out = []
        for i in range(n):
            made[0] += 1
            shifted = np.roll(base, made[0] % 97, axis=1) if made[0] < 97 else np.roll(base, made[0] % 97, axis=0)
            out.append(save_image(np.ascontiguousarray(shifted), root / tag / f"{tag}_{i:02d}.png"))
        return out

    options = RunOptions(size=args.size, steps=args.steps)
    print(f"{args.jobs} jobs per figure, tiny models, {args.size} px, {args.steps} steps, CPU; load before: {_load()}")

    # direct: one process, models loaded once (as `zrealism run FOLDER`), per image
    pipe = load_models(discover(models_dir), device="cpu")
    run_image(images("warm", 1)[0], root / "direct_warm", pipe, options, progress=False)
    t0 = time.perf_counter()
    for i, p in enumerate(images("direct", args.jobs)):
        run_image(p, root / "direct" / str(i), pipe, options, progress=False)
    direct = (time.perf_counter() - t0) / args.jobs
    del pipe

    with RedisServer(root / "redis") as redis:
        def fleet_run(n_workers: int, tag: str):
            workers = [Worker(f"{tag}{i}", redis.url, root / "shared", root, models=models_dir) for i in range(n_workers)]
            try:
                for w in workers:
                    w.wait_ready()
                warm = [submit(p, options, broker=redis.url) for p in images(f"{tag}warm", n_workers * 2)]
                for j in warm:  # every worker loads its models before the clock starts
                    j.result(timeout=300)
                firsts = []
                for p in images(f"{tag}first", 3):  # submit -> first state, an idle warm fleet
                    t = time.perf_counter()
                    job = submit(p, options, broker=redis.url)
                    while job.state == states.PENDING:
                        time.sleep(0.001)
                    firsts.append(time.perf_counter() - t)
                    job.result(timeout=300)
                t = time.perf_counter()
                jobs = [submit(p, options, broker=redis.url) for p in images(tag, args.jobs)]
                for j in jobs:
                    j.result(timeout=600)
                wall = time.perf_counter() - t
                return wall, statistics.median(firsts)
            finally:
                for w in workers:
                    w.stop()

        one, first1 = fleet_run(1, "q1w")
        two, _ = fleet_run(2, "q2w")

    per_job = one / args.jobs
    over = per_job - direct
    budget = 0.3 + 0.03 * direct
    print(f"direct zrealism run (warm models)   {direct:7.3f} s per job")
    print(f"queue, 1 worker (warm)              {per_job:7.3f} s per job")
    print(f"overhead per job                    {over:+7.3f} s ({100 * over / direct:+.1f} %)  "
          f"(goal <= 0.3 s + 3 % = {budget:.3f} s: {'met' if over <= budget else 'NOT met'})")
    print(f"throughput, 1 worker                {60 * args.jobs / one:7.1f} jobs/min")
    print(f"throughput, 2 workers               {60 * args.jobs / two:7.1f} jobs/min  ({one / two:.2f}x of 1 worker)")
    print(f"submit -> first state seen          {1000 * first1:7.1f} ms (median of 3, idle warm worker)")
    print(f"load after: {_load()}")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
