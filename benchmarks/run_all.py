"""Run every benchmark script in this folder and write benchmarks/RESULTS.md.

Each bench_*.py prints its own figures; this script runs them one after another (never in
parallel: they would time each other), records the machine and package versions, and puts
each script's output into RESULTS.md verbatim.

    python -m benchmarks.run_all                 # all of them
    python -m benchmarks.run_all --only prep evaluate
    python -m benchmarks.run_all --skip still cpu_speed speed_cases adapter_costs video   # the heavy ones (~8 GB RAM, minutes)

bench_gpu measures nothing (and says so) without a CUDA GPU.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["torch", "diffusers", "transformers", "numpy", "opencv-python-headless", "scipy", "controlnet-aux"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names to run (e.g. prep evaluate)")
    parser.add_argument("--skip", nargs="*", default=[], help="benchmark names to skip")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where to write the results")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per benchmark")
    args = parser.parse_args(argv)

    scripts = sorted(HERE.glob("bench_*.py"))
    chosen = []
    for script in scripts:
        name = script.stem[len("bench_"):]
        if args.only is not None and name not in args.only:
            continue
        if name in args.skip:
            continue
        chosen.append((name, script))
    if not chosen:
        print("no benchmark selected", file=sys.stderr)
        return 2

    header = (
        "# Benchmark results\n\n"
        f"Written by `python -m benchmarks.run_all` on {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}.\n\n"
        f"- machine: {_cpu_model()}, {os.cpu_count()} cores, {_mem_gib()} RAM, no GPU used\n"
        f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}\n"
        f"- {_versions()}\n\n"
        "Every figure below is printed by the benchmark script named in the heading; goals are in each\n"
        "script's output. A 2-core machine times other work too: the load average is given per script.\n\n"
    )
    sections = []
    failures = 0
    for name, script in chosen:
        print(f"== {script.name}", flush=True)
        load_before = _load()
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{script.stem}"], capture_output=True, text=True, timeout=args.timeout,
            cwd=HERE.parent,
        )
        wall = time.perf_counter() - start
        print(proc.stdout, end="", flush=True)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        if proc.returncode != 0:
            failures += 1
            print(proc.stderr[-4000:], file=sys.stderr)
        body = proc.stdout.strip() or "(no output)"
        if proc.returncode != 0:
            body += "\n\n--- stderr (tail) ---\n" + proc.stderr[-2000:].strip()
        sections.append(
            f"## {script.name}\n\n{status}; wall {wall:.1f} s; load average before: {load_before}\n\n```\n{body}\n```\n"
        )
        # written after every script, so a stopped run keeps what it measured
        Path(args.out).write_text(header + "\n".join(sections))

    print(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
