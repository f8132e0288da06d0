"""`zrealism worker | submit | status | result | cancel`: the Celery + Redis queue (zrealism_core.queue).

    zrealism worker --broker redis://HOST:6379/0 --models DIR --out SHARED [--device cuda:0]
    zrealism worker --broker redis://HOST:6379/0 --comfy http://127.0.0.1:8188 --out SHARED
    zrealism submit IMAGE_OR_FOLDER... --broker URL [the job options of zrealism run]   # one id per line
    zrealism status ID... / zrealism result ID --out DIR / zrealism cancel ID
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .run import add_job_arguments, options_from
from ..errors import InputError
from ..queue import states

BROKER_HELP = "the Redis URL of the queue, e.g. redis://127.0.0.1:6379/0 (default: $ZREALISM_BROKER, else that)"


def _broker(p) -> None:
    p.add_argument("--broker", default=os.environ.get("ZREALISM_BROKER", "redis://127.0.0.1:6379/0"), help=BROKER_HELP)


def register(sub) -> None:
    w = sub.add_parser("worker", help="run one queue worker (one job at a time: one worker per device)",
                       description="Run one Celery worker that takes jobs from the queue. Models are loaded at the "
                       "first job and kept warm. Start one per GPU (--device cuda:N), on as many machines as you "
                       "like, all with the same --broker and a shared --out.")
    _broker(w)
    w.add_argument("--models", type=Path, help="a folder laid out like ComfyUI's models/ (checkpoints/, controlnet/, ...)")
    w.add_argument("--comfy", metavar="URL", help="instead of --models: run each job on this ComfyUI server "
                   "(e.g. http://127.0.0.1:8188) through the shipped API workflow")
    w.add_argument("--workflow", type=Path, help="with --comfy: an API workflow of your own (ComfyUI's Export (API)) "
                   "with one Load Image, our sampler, Save Image and Fidelity Evaluator (default: the shipped "
                   "workflows/api/zrealism_still.json)")
    w.add_argument("--video-workflow", type=Path, help="with --comfy: the same for --video jobs, with AnimateDiff Fuse and "
                   "Save Video (default: the shipped workflows/api/zrealism_video.json)")
    w.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    w.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="precision (default auto)")
    w.add_argument("--out", type=Path, default=Path("zrealism_out"),
                   help="output folder, shared by all workers and clients (default: zrealism_out)")
    w.add_argument("--time-limit", type=float, default=None,
                   help="hard limit per job in seconds (default 3600; the soft limit is 90%% of it, Redis redelivers "
                        "a job whose worker vanished after 1.5x it)")
    w.add_argument("--name", default=None, help="worker name in logs and results (default: zrealism-<pid>)")
    w.set_defaults(func=worker)

    s = sub.add_parser("submit", help="queue images; prints one job id per image",
                       description="Queue each image (a folder: each image in it) with the options of `zrealism run`. "
                       "Inputs are read by path: put them where every worker can read them at the same path. The "
                       "same image with the same options gives back the earlier job (done or queued) unless --force.")
    s.add_argument("inputs", nargs="+", type=Path, help="images, or folders of images")
    _broker(s)
    s.add_argument("--force", action="store_true", help="run again even if the same job is done or queued")
    s.add_argument("--json", action="store_true", help="print one JSON object per job (id, input, cached)")
    add_job_arguments(s)
    s.set_defaults(func=submit)

    st = sub.add_parser("status", help="the state and progress of jobs")
    st.add_argument("ids", nargs="+", help="job ids (from zrealism submit)")
    _broker(st)
    st.add_argument("--json", action="store_true", help="print the state and meta as JSON")
    st.set_defaults(func=status)

    r = sub.add_parser("result", help="wait for a job and copy its files into --out")
    r.add_argument("id", help="job id")
    _broker(r)
    r.add_argument("--out", type=Path, default=Path("."), help="where to put the job's folder (default: here)")
    r.add_argument("--timeout", type=float, default=None, help="seconds to wait (default: as long as it takes)")
    r.set_defaults(func=result)

    c = sub.add_parser("cancel", help="stop a job at its next step (or before it starts)")
    c.add_argument("ids", nargs="+", help="job ids")
    _broker(c)
    c.set_defaults(func=cancel)


def worker(args: argparse.Namespace) -> int:
    from ..queue.app import DEFAULT_TIME_LIMIT, make_app
    from ..queue.worker import WorkerConfig, configure, register

    if (args.models is None) == (args.comfy is None):
        raise InputError("give the worker either --models DIR (run jobs here) or --comfy URL (run them on a ComfyUI server).")
    for flag, given in (("--workflow", args.workflow), ("--video-workflow", args.video_workflow)):
        if given is not None and not given.is_file():
            raise InputError(f"{flag} file not found: {given}")
    if args.models is not None and not args.models.is_dir():
        raise InputError(f"--models folder not found: {args.models}")
    limit = float(args.time_limit or DEFAULT_TIME_LIMIT)
    if limit <= 0:
        raise InputError(f"--time-limit must be above 0; got {args.time_limit}.")
    if args.models is not None:
        from ..models.catalog import discover
        from ..runner import check_models

        check_models(discover(args.models), video=False, models_dir=args.models)  # fail now, not at the first job
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    from ..runner import quiet_libraries

    quiet_libraries()
    configure(WorkerConfig(broker=args.broker, out=out, models=args.models.resolve() if args.models else None,
                           device=args.device, dtype=args.dtype, comfy=args.comfy, time_limit=limit,
                           workflow=args.workflow.resolve() if args.workflow else None,
                           video_workflow=args.video_workflow.resolve() if args.video_workflow else None))
    app = make_app(args.broker, time_limit=limit)
    register(app)
    name = args.name or f"zrealism-{os.getpid()}"
    # prefork with one child: time limits work, and the child (not this process) loads the models
    app.worker_main(["worker", "--pool=prefork", "--concurrency=1", f"--hostname={name}@%h", "--loglevel=INFO",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])
    return 0


def submit(args: argparse.Namespace) -> int:
    from . import adapters
    from ..queue.client import submit as submit_one
    from ..runner import list_inputs

    adapters.check(args)
    options = options_from(args)
    images = [p for path in args.inputs for p in list_inputs(path)]
    if not images:
        raise InputError("no images found in: " + ", ".join(map(str, args.inputs)))
    for image in images:
        job = submit_one(image, options, broker=args.broker, force=args.force)
        if args.json:
            print(json.dumps({"id": job.id, "input": str(image), "cached": job.cached}))
        else:
            print(job.id)
    sys.stdout.flush()
    return 0


def status(args: argparse.Namespace) -> int:
    from ..queue.client import Job

    code = 0
    for job_id in args.ids:
        job = Job(job_id, args.broker)
        state, meta = job.snapshot()
        if not job.known:
            print(f"{job_id}: unknown job id (not submitted to {args.broker}, or its result expired)")
            code = 2
            continue
        if args.json:
            print(json.dumps({"id": job_id, "state": state, "progress": states.progress(state, meta), "meta": meta, "error": job.error}))
        elif state == "FAILURE":
            print(f"{job_id}: FAILURE: {job.error}")
        elif meta:
            print(f"{job_id}: {state} {meta.get('stage', '')} {meta.get('step', 0)}/{meta.get('total', 0)} "
                  f"on {meta.get('device', '?')} ({states.progress(state, meta):.0%})")
        else:
            print(f"{job_id}: {state}")
    return code


def result(args: argparse.Namespace) -> int:
    from ..queue.client import Job

    folder = Job(args.id, args.broker).fetch(args.out, timeout=args.timeout)
    print(folder)
    return 0


def cancel(args: argparse.Namespace) -> int:
    from ..queue.client import Job

    for job_id in args.ids:
        Job(job_id, args.broker).cancel()
        print(f"{job_id}: cancel requested")
    return 0
