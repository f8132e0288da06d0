"""`zrealism evaluate`: fidelity and realism scores of a result (image, clip or frame folder) vs its source."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..imaging.images import load_image, save_image, to_mask

_STILL_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a result against its source drawing (silhouette, edge, colour, realism, temporal)",
        description="Score a photoreal result against its source drawing. Every score is 0..1 (1 = perfect) and "
        "computed on the character (from --mask, else the near-white background touching the border is left out). "
        "RESULT may be an image, an MP4/GIF/WebP clip or a folder of frames; a clip also gets a temporal score.",
    )
    p.add_argument("source", help="the source drawing (image file)")
    p.add_argument("result", help="the result: image, MP4/GIF/WebP, or a folder of frames")
    p.add_argument("--mask", help="source character mask image, white = character")
    p.add_argument("--result-mask", help="result character mask image, white = character (default: detected)")
    p.add_argument("--depth-map", help="the source's depth map (e.g. from `zrealism transform --depth-map-out`) for "
                   "the control score depth_corr, instead of detecting it")
    p.add_argument("--pose-map", help="the source's OpenPose map, read back for the control score pose_pck")
    p.add_argument("--annotators", action="append", default=None, metavar="DIR",
                   help="folder with detector weights for depth_corr / pose_pck (repeatable; also ZREALISM_ANNOTATORS)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON instead of a summary")
    p.add_argument("--panel", help="write the panel picture (source | result | edges | colour difference | scores) here")
    p.set_defaults(func=run)


def _read_result(path: str):
    """(frames, is_clip) for an image file, a clip or a folder."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"result not found: {p}")
    if p.is_file() and p.suffix.lower() in _STILL_SUFFIXES:
        return [load_image(p, name="result")], False
    from ..imaging.video import read_video

    frames, _fps = read_video(p)
    if not frames:
        raise InputError(f"no frames could be read from {p}.")
    return frames, p.is_dir() or len(frames) > 1


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, evaluate_video

    source = load_image(args.source, name="source")
    mask = to_mask(load_image(args.mask, name="mask"), name="mask") if args.mask else None
    result_mask = to_mask(load_image(args.result_mask, name="result mask"), name="result mask") if args.result_mask else None
    frames, is_clip = _read_result(args.result)
    maps = dict(depth_map=load_image(args.depth_map, name="depth map") if args.depth_map else None,
                pose_map=load_image(args.pose_map, name="pose map") if args.pose_map else None,
                annotator_dirs=args.annotators)
    if is_clip:
        report = evaluate_video(source, frames, mask, result_masks=result_mask, **maps)
    else:
        report = evaluate(source, frames[0], mask, result_mask=result_mask, **maps)
    if args.panel:
        from ..evaluation.panel import render_panel

        out = save_image(render_panel(None, None, report), args.panel)
        if not args.json:
            print(f"panel written to {out}")
    print(report.to_json() if args.json else report.summary())
    return 0
