"""`zrealism run`: the whole pipeline on one image, the bundled sample, or a folder (batch, resumable)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import adapters
from ..animation import LOOP_MODES
from ..control.maps import DEPTH_METHODS
from ..control.hints import DETAIL_HINTS
from ..errors import InputError
from ..runtime.guidance import CONTROL_BUDGETS
from ..models.schedulers import SCHEDULER_NAMES
from ..settings import DEFAULT_PRESET, PRESET_NAMES

# The Dual ControlNet Sampler's settings this command takes under the node's input names (--depth-start =
# depth_start, ...); unset, each is the analyzer's recommendation (as when the params input is wired) or the
# node's default. tests/test_cli_settings.py checks these against the nodes' inputs.
SAMPLER_FLAGS = ("cfg", "depth_scale", "pose_scale", "depth_start", "depth_end", "pose_start", "pose_end", "scheduler",
                 "depth_method", "detect_resolution", "detail_scale", "detail_start", "detail_end", "detail_hint",
                 "cfg_end", "control_budget", "control_reuse", "unet_reuse")


def add_sampler_arguments(p) -> None:
    """The sampler's settings (SAMPLER_FLAGS), as the node's widgets say them."""
    s = p.add_argument_group("sampler (the Dual ControlNet Sampler's inputs under the same names; unset = the "
                             "analyzer's recommendation, or the node's default)")
    s.add_argument("--cfg", type=float, help="prompt guidance strength; 1 or less turns it off (node default 7)")
    for net, what in (("depth", "geometry"), ("pose", "pose")):
        s.add_argument(f"--{net}-scale", type=float, help=f"{net} ControlNet strength ({what}); 0 turns it off (node default 0.7)")
        s.add_argument(f"--{net}-start", type=float, help=f"fraction of the schedule where the {net} ControlNet starts (default 0)")
        s.add_argument(f"--{net}-end", type=float, help=f"fraction of the schedule where the {net} ControlNet stops (default 1)")
    s.add_argument("--scheduler", choices=list(SCHEDULER_NAMES), help="sampler (node default dpmpp_2m_karras)")
    s.add_argument("--depth-method", choices=list(DEPTH_METHODS),
                   help="depth detector: depth_anything, midas, or auto (Depth Anything when its files are there; default)")
    s.add_argument("--detect-resolution", type=int,
                   help="short side (pixels) the depth and pose detectors work at; pose runs on the character's crop "
                        "(from the prep mask) resized to it, so a small figure gets the full resolution (default 512)")
    s.add_argument("--detail-scale", type=float,
                   help="strength of the detail ControlNet (--detail-controlnet); 0 = off (default; the analyzer's "
                        "recommendation when a detail net is given)")
    s.add_argument("--detail-start", type=float, help="fraction of the schedule where the detail ControlNet starts (default 0)")
    s.add_argument("--detail-end", type=float, help="fraction of the schedule where the detail ControlNet stops (default 1)")
    s.add_argument("--detail-hint", choices=list(DETAIL_HINTS),
                   help="what the detail ControlNet is given: tile, canny, lineart, or auto (from the net's file name; default)")
    s.add_argument("--cfg-end", type=float, help="fraction of the steps that use guidance (default 1 = all)")
    s.add_argument("--control-budget", choices=list(CONTROL_BUDGETS),
                   help="full (default): ControlNets on both branches; prompt_branch: once per step")
    s.add_argument("--control-reuse", type=int,
                   help="1 = off (default); N: the ControlNets run every N-th step of their window, reused in between")
    s.add_argument("--unet-reuse", type=int,
                   help="1 = off (default); N: DeepCache, the full UNet every N-th step, its outer blocks only in between")


def add_job_arguments(p) -> None:
    """What one job is made of, besides its input, models and device: shared by `zrealism run` and
    `zrealism submit` (the queue), so both take the same options under the same names."""
    g = p.add_argument_group("generation")
    g.add_argument("--steps", type=int, help="sampling steps (default: the analyzer's recommendation)")
    g.add_argument("--denoise", type=float, help="img2img strength (default: the analyzer's recommendation)")
    g.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    g.add_argument("--size", type=int, default=512, help="long side of the working image, multiple of 8 (default 512)")
    g.add_argument("--subject", default="", help="subject phrase for the prompt, e.g. 'a young woman with red hair'")
    g.add_argument("--prompt", default="", help="replace the suggested positive prompt")
    g.add_argument("--negative", default="", help="replace the suggested negative prompt")
    g.add_argument("--color-lock", type=float, default=0.0, help="0..1 pull of the result's colours toward the drawing")
    adapters.add_arguments(p.add_argument_group("LoRAs and IP-Adapter (the prepared drawing is the IP-Adapter's reference)"))
    g.add_argument("--embeddings", type=Path, action="append", default=[], metavar="DIR",
                   help="folder of textual-inversion embeddings for embedding:NAME in prompts (repeatable; "
                        "--models adds its embeddings/ folder)")
    g.add_argument("--clip-skip", type=int, default=1, help="CLIP layer the prompts are read from: 1 = last (default), 2 = penultimate")
    g.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESET_NAMES),
                   help="speed preset: balanced (default) = the full UNet and the ControlNets every other step on the still (unet_reuse 2, control_reuse 2) and a channels-last VAE decode; "
                        "quality = every setting as given (the output of earlier releases); fast = also guidance on the first "
                        "half of the steps, ControlNets once per step and ending by 0.6 (steps unchanged)")
    add_sampler_arguments(p)
    v = p.add_argument_group("video")
    v.add_argument("--video", action="store_true", help="also animate the still into a clip (needs a motion module)")
    v.add_argument("--frames", type=int, default=16, help="clip length in frames (default 16)")
    v.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")
    v.add_argument("--video-strength", type=float, default=0.5, help="how far frames may move from the still (default 0.5)")
    v.add_argument("--loop", choices=list(LOOP_MODES), default="off",
                   help="off (default); crossfade = the clip loops seamlessly (same length); pingpong = forward then backward")


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="prep -> analyze -> depth/pose -> still -> (clip) -> evaluate, writing every output",
        description="Run the full pipeline. Writes prepped.png, mask.png, depth.png, pose.png, result.png, "
        "result.mp4 (--video), report.json and report.png into --out (one sub-folder per image for a folder "
        "input; images already done are skipped, so a stopped batch resumes). Needs the real models: "
        "see README's models table and docs/models.md; `zrealism selftest` checks an install without them.",
    )
    p.add_argument("input", nargs="?", type=Path, help="an image, or a folder of images")
    p.add_argument("--sample", action="store_true", help="use the bundled sample character as the input")
    p.add_argument("--out", type=Path, default=Path("zrealism_out"), help="output folder (default: zrealism_out)")
    m = p.add_argument_group("models (a ComfyUI-style models/ folder, or explicit paths, which win)")
    m.add_argument("--models", type=Path, help="a folder laid out like ComfyUI's models/ (checkpoints/, controlnet/, ...)")
    m.add_argument("--checkpoint", type=Path, help="SD1.5 checkpoint: single file or diffusers folder")
    m.add_argument("--depth-controlnet", type=Path, help="depth ControlNet for SD1.5 (file or folder)")
    m.add_argument("--pose-controlnet", type=Path, help="OpenPose ControlNet for SD1.5 (file or folder)")
    m.add_argument("--motion-adapter", type=Path, help="AnimateDiff SD1.5 motion module (for --video)")
    m.add_argument("--vae", type=Path, help="optional separate VAE")
    m.add_argument("--detail-controlnet", type=Path,
                   help="optional third ControlNet for SD1.5 (tile, line art, canny; file or folder), run when "
                        "--detail-scale (or the analyzer's recommendation) is above 0; never picked from --models")
    m.add_argument("--annotators", type=Path, action="append", default=[],
                   help="folder with depth/pose detector weights (repeatable)")
    m.add_argument("--config", type=Path, help="diffusers config folder for a single-file checkpoint "
                   "(default: the SD1.5 configs shipped in the package)")
    d = p.add_argument_group("device")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    d.add_argument("--cpu-fallback", action=argparse.BooleanOptionalAction, default=None,
                   help="on GPU out-of-memory, retry smaller and finally on the CPU (default on; --no-cpu-fallback fails instead)")
    d.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="precision (default auto)")
    add_job_arguments(p)
    p.add_argument("--json", action="store_true", help="print the scores of each image as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def resolve_models(args: argparse.Namespace):
    from ..models.catalog import ModelPaths, discover

    paths = discover(args.models) if args.models else ModelPaths()
    if args.models and not args.models.is_dir():
        raise InputError(f"--models folder not found: {args.models}")
    for key in ("checkpoint", "depth_controlnet", "pose_controlnet", "motion_adapter", "vae", "detail_controlnet"):
        value = getattr(args, key)
        if value is not None:
            setattr(paths, key, value)
    paths.annotator_dirs = list(args.annotators) + list(paths.annotator_dirs)
    return paths


def _models_embeddings(models) -> list:
    return [models / "embeddings"] if models and (models / "embeddings").is_dir() else []


def options_from(args: argparse.Namespace):
    from ..runner import RunOptions

    if args.size is not None and args.size and (args.size < 64 or args.size % 8):
        raise InputError(f"--size must be a multiple of 8 and at least 64; got {args.size}.")
    if args.frames < 1:
        raise InputError(f"--frames must be 1 or more; got {args.frames}.")
    if args.fps <= 0:
        raise InputError(f"--fps must be above 0; got {args.fps}.")
    return RunOptions(
        seed=args.seed, size=args.size, subject=args.subject, prompt=args.prompt, negative=args.negative,
        steps=args.steps, denoise=args.denoise, color_lock=args.color_lock, video=args.video,
        frames=args.frames, fps=args.fps, video_strength=args.video_strength,
        loras=adapters.lora_list(args.lora), ip_adapter=args.ip_adapter, clip_vision=args.clip_vision,
        ip_weight=args.ip_weight,
        embedding_dirs=list(args.embeddings) + _models_embeddings(getattr(args, "models", None)),
        clip_skip=args.clip_skip,
        preset=args.preset,
        sampler={k: getattr(args, k) for k in SAMPLER_FLAGS if getattr(args, k) is not None},
        loop=args.loop,
    )


def run(args: argparse.Namespace) -> int:
    from ..runner import check_models, list_inputs, run_batch

    if args.sample == (args.input is not None):
        raise InputError("give exactly one input: an image or folder, or --sample.")
    adapters.check(args)
    options = options_from(args)
    models = resolve_models(args)
    check_models(models, video=args.video, models_dir=args.models)
    sample = None
    if args.sample:
        from ..imaging.sample import sample_character

        inputs = [Path("sample.png")]
        sample = sample_character(512)
    else:
        inputs = list_inputs(args.input)
    results = run_batch(inputs, args.out, models, options, device=args.device, dtype=args.dtype,
                        config=args.config, progress=not args.no_progress, sample_image=sample, fallback=args.cpu_fallback)
    for path, r in zip(inputs, results):
        if r.skipped:
            print(f"{path.name}: done already ({r.out_dir}), skipped")
            continue
        if args.json:
            print(json.dumps({"input": path.name, "out_dir": str(r.out_dir), "scores": r.scores,
                              "timings_s": {k: round(v, 3) for k, v in r.timings.items()}}))
        else:
            scores = ", ".join(f"{k} {v:.3f}" for k, v in r.scores.items())
            print(f"{path.name}: wrote {r.out_dir} ({scores})")
    sys.stdout.flush()
    return 0
