"""`zrealism selftest`: prove an install works end to end, offline, without downloading any model.

It writes tiny random-weight models (SD1.5-shaped, ~20 MB) into a temporary folder laid out like
ComfyUI's models/, then runs the whole pipeline (prep, analyze, depth/pose, still, clip, evaluate)
on the bundled sample, and prints the time of each stage. The pictures are noise (random weights);
what is checked is that every stage runs and writes valid outputs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict


def register(sub) -> None:
    p = sub.add_parser("selftest", help="run the whole pipeline on tiny random-weight models (no download)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", type=Path, help="keep the models and outputs in this folder instead of a temporary one")
    p.add_argument("--no-video", action="store_true", help="skip the clip stage")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def write_tiny_models_dir(models: Path) -> Path:
    """A ComfyUI-style models/ folder with tiny random-weight models in the formats users have."""
    from ..testing.tiny_annotators import write_openpose_files, write_tiny_depth_anything
    from ..testing.tiny_models import write_tiny_controlnet, write_tiny_diffusers_folder
    from ..testing.tiny_motion import write_tiny_motion_adapter

    write_tiny_diffusers_folder(models / "diffusers" / "tiny-sd15")
    write_tiny_controlnet(models / "controlnet" / "tiny_control_sd15_depth.safetensors", "ldm", 1)
    write_tiny_controlnet(models / "controlnet" / "tiny_control_sd15_openpose.safetensors", "diffusers", 2)
    write_tiny_motion_adapter(models / "animatediff_models" / "tiny_mm_sd15.safetensors")
    write_tiny_depth_anything(models / "zrealism_annotators")
    write_openpose_files(models / "zrealism_annotators")
    return models


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network
    from ..models.catalog import discover
    from ..runner import RunOptions, check_models, quiet_libraries, run_batch
    from ..imaging.sample import sample_character

    t_start = time.perf_counter()
    quiet_libraries()
    import torch

    # Tiny models gain nothing from a second thread, and OpenMP's spin-waits make extra threads many
    # times slower whenever anything else runs on the machine.
    torch.set_num_threads(1)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="zrealism-selftest-"))
    root.mkdir(parents=True, exist_ok=True)
    timings: Dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        models_dir = write_tiny_models_dir(root / "models")
        timings["write tiny models"] = time.perf_counter() - t0
        models = discover(models_dir)
        video = not args.no_video
        check_models(models, video=video, models_dir=models_dir)
        options = RunOptions(seed=0, size=64, steps=4, denoise=0.75, video=video, frames=8, fps=8.0,
                             video_steps=2, subject="a character")
        out = root / "out"
        (r,) = run_batch([Path("sample.png")], out, models, options, device="cpu", dtype="fp32",
                         progress=not args.no_progress, sample_image=sample_character(256))
        timings.update(r.timings)
        problems = [f"missing output {name}" for name, p in r.files.items() if not Path(p).is_file()]
        problems += [f"score {k} = {v}" for k, v in r.scores.items() if not (math.isfinite(v) and 0 <= v <= 1)]
        if video:
            from ..imaging.video import read_video

            frames, fps = read_video(r.files["video"])
            if len(frames) != options.frames:
                problems.append(f"clip has {len(frames)} frames, expected {options.frames}")
        doc = json.loads((out / "report.json").read_text())
        total = time.perf_counter() - t_start
        print("zrealism selftest: stage times")
        for name, secs in timings.items():
            print(f"  {name:<18} {secs:7.2f} s")
        print(f"  {'total':<18} {total:7.2f} s")
        print(f"  device {doc['device']['device']} ({doc['device']['dtype']}), outputs in {out if args.keep else '(temporary)'}")
        if problems:
            print("zrealism selftest: FAILED: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(f"zrealism selftest: passed in {total:.1f} s (tiny random-weight models: the pictures are noise)")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
