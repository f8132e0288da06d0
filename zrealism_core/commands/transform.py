"""`zrealism transform`: drawing -> photo with SD1.5 + depth and OpenPose ControlNets (local files only)."""
from __future__ import annotations

import argparse
import logging
import sys

from . import adapters
from ..control.hints import DETAIL_HINTS
from ..errors import InputError
from ..imaging.images import load_image, save_image, to_mask
from ..models.schedulers import DEFAULT_SCHEDULER, SCHEDULER_NAMES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "transform",
        help="turn a (prepared) drawing into a photo with SD1.5 + depth/OpenPose ControlNets",
        description="SD1.5 img2img guided by a depth and an OpenPose ControlNet. Models are local files "
        "(a checkpoint .safetensors or diffusers folder; ControlNets in original or diffusers layout). "
        "Depth/pose maps are detected unless given (--depth-map/--pose-map).",
    )
    p.add_argument("image", help="input image (ideally the character on white, from `zrealism prep`)")
    p.add_argument("-o", "--output", required=True, help="output image (PNG/JPEG/WebP)")
    p.add_argument("--checkpoint", required=True, help="SD1.5 checkpoint file or diffusers folder")
    p.add_argument("--depth-controlnet", required=True, help="depth ControlNet (e.g. control_v11f1p_sd15_depth)")
    p.add_argument("--pose-controlnet", required=True, help="OpenPose ControlNet (e.g. control_v11p_sd15_openpose)")
    p.add_argument("--vae", help="optional separate VAE file or folder")
    p.add_argument("--config", help="diffusers config folder for a single-file checkpoint with non-SD1.5 shapes")
    p.add_argument("--mask", help="character mask image (white = character), used by --color-lock")
    p.add_argument("--depth-map", help="use this depth map instead of detecting one")
    p.add_argument("--pose-map", help="use this OpenPose map instead of detecting one")
    p.add_argument("--depth-map-out", help="also write the depth map used")
    p.add_argument("--pose-map-out", help="also write the pose map used")
    p.add_argument("--annotators", action="append", default=None, metavar="DIR",
                   help="folder with detector weights (repeatable)")
    p.add_argument("--prompt", default="", help="positive prompt (ComfyUI syntax: (word:1.2), embedding:NAME; any length)")
    p.add_argument("--embeddings", action="append", default=None, metavar="DIR",
                   help="folder of textual-inversion embeddings for embedding:NAME (repeatable)")
    p.add_argument("--clip-skip", type=int, default=1, help="CLIP layer the prompts are read from: 1 = last (default), 2 = penultimate")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--cfg", type=float, default=7.0)
    p.add_argument("--denoise", type=float, default=0.55, help="img2img strength (0..1]")
    p.add_argument("--depth-scale", type=float, default=0.7)
    p.add_argument("--pose-scale", type=float, default=0.7)
    p.add_argument("--depth-start", type=float, default=0.0)
    p.add_argument("--depth-end", type=float, default=1.0)
    p.add_argument("--pose-start", type=float, default=0.0)
    p.add_argument("--pose-end", type=float, default=1.0)
    p.add_argument("--scheduler", choices=SCHEDULER_NAMES, default=DEFAULT_SCHEDULER)
    p.add_argument("--color-lock", type=float, default=0.0, help="colour lock strength 0..1 (0 = off)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N, mps or cpu")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--no-fallback", action="store_true", help="fail on GPU out-of-memory instead of falling back to the CPU")
    p.add_argument("--allow-download", action="store_true",
                   help="allow Hugging Face Hub ids for the models (downloads; off by default)")
    adapters.add_arguments(p)
    d = p.add_argument_group("detail ControlNet (optional third net; docs/control-maps.md: Detail ControlNet)")
    d.add_argument("--detail-controlnet", help="SD1.5 tile / line-art / canny ControlNet file or folder")
    d.add_argument("--detail-scale", type=float, default=0.0, help="its strength (0 = off, the default)")
    d.add_argument("--detail-start", type=float, default=0.0)
    d.add_argument("--detail-end", type=float, default=1.0)
    d.add_argument("--detail-hint", choices=DETAIL_HINTS, default="auto",
                   help="hint made without any model: tile, canny, lineart, or auto (from the net's file name)")
    d.add_argument("--detail-map", help="use this image as the detail hint instead")
    d.add_argument("--detail-map-out", help="also write the detail hint used")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import load_pipeline, transform

    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    image = load_image(args.image)
    mask = to_mask(load_image(args.mask, name="mask"), image.shape[:2], name="mask") if args.mask else None
    depth = load_image(args.depth_map, name="depth map") if args.depth_map else None
    pose = load_image(args.pose_map, name="pose map") if args.pose_map else None
    detail_map = load_image(args.detail_map, name="detail map") if args.detail_map else None
    if args.color_lock and not 0.0 <= args.color_lock <= 1.0:
        raise InputError("--color-lock must be between 0 and 1.")
    adapters.check(args)
    pipe = load_pipeline(
        args.checkpoint, args.depth_controlnet, args.pose_controlnet, vae=args.vae,
        device=args.device, dtype=args.precision, config=args.config, fallback=not args.no_fallback,
        allow_download=args.allow_download, annotator_dirs=args.annotators, detail_controlnet=args.detail_controlnet,
        embedding_dirs=args.embeddings, clip_skip=args.clip_skip,
    )
    pipe = adapters.view(pipe, adapters.lora_list(args.lora), args.ip_adapter, args.clip_vision, args.ip_weight, image)

    def progress(step: int, total: int) -> None:
        if not args.quiet:
            print(f"\rstep {step}/{total}", end="\n" if step >= total else "", file=sys.stderr, flush=True)

    r = transform(
        pipe, image, mask=mask, depth_map=depth, pose_map=pose, prompt=args.prompt, negative=args.negative,
        seed=args.seed, steps=args.steps, cfg=args.cfg, denoise=args.denoise, depth_scale=args.depth_scale,
        pose_scale=args.pose_scale, depth_start=args.depth_start, depth_end=args.depth_end,
        pose_start=args.pose_start, pose_end=args.pose_end, scheduler=args.scheduler,
        color_lock=args.color_lock, callback=progress, detail_scale=args.detail_scale, detail_start=args.detail_start,
        detail_end=args.detail_end, detail_hint=args.detail_hint, detail_map=detail_map,
    )
    out = save_image(r.image, args.output)
    if args.depth_map_out:
        save_image(r.depth_map, args.depth_map_out)
    if args.pose_map_out:
        save_image(r.pose_map, args.pose_map_out)
    if args.detail_map_out and r.detail_map is not None:
        save_image(r.detail_map, args.detail_map_out)
    h, w = r.image.shape[:2]
    extra = f", fallback: {r.fallback}" if r.fallback else ""
    print(f"wrote {out} ({w}x{h}, {r.steps} steps on {r.device} {r.dtype}{extra})")
    return 0
