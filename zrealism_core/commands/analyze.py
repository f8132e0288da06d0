"""`zrealism analyze`: structure features, recommended settings and prompts for a drawing."""
from __future__ import annotations

import argparse
import json

from ..analysis import analyze
from ..imaging.images import load_image, to_mask


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="measure a drawing and recommend ControlNet scales, denoise, steps, CFG and prompts",
        description="Measure the character's structure (edges, line art, shading, palette, brightness) and "
        "recommend sampler settings and CLIP-length prompts.",
    )
    p.add_argument("image", help="the drawing (ideally the output of `zrealism prep`)")
    p.add_argument("--mask", help="mask image, white = character (e.g. from `zrealism prep --mask-out`)")
    p.add_argument("--subject", default="", help="the character in a few words; starts the positive prompt")
    p.add_argument("--json", action="store_true",
                   help="print JSON with `features`, `params`, `positive`, `negative` instead of the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    image = load_image(args.image)
    mask = to_mask(load_image(args.mask, name="mask"), name="mask") if args.mask else None
    result = analyze(image, mask, subject=args.subject)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.report)
    return 0
