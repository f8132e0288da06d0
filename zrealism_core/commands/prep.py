"""`zrealism prep`: put a drawing's character on pure white and write the image (and mask)."""
from __future__ import annotations

import argparse

from ..errors import InputError
from ..imaging.images import load_image, save_image
from ..prep import DEFAULTS, prepare_white_background


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prep",
        help="cut the character out and put it on pure white",
        description="Cut the character out of a drawing (mask file, else transparency, else flat-background "
        "detection) and composite it onto pure white with clean anti-aliased edges.",
    )
    p.add_argument("image", nargs="?", help="input drawing (PNG/JPEG/WebP...); omit with --sample")
    p.add_argument("-o", "--output", required=True, help="output PNG (character on white)")
    p.add_argument("--mask-out", help="also write the character mask (white = character) here")
    p.add_argument("--sample", action="store_true",
                   help="use the bundled sample character (on its flat blue background) as the input")
    p.add_argument("--mask", help="mask image, white = character (overrides transparency and detection)")
    p.add_argument("--invert-mask", action="store_true", help="the --mask file is white = background")
    p.add_argument("--tolerance", type=float, default=DEFAULTS["tolerance"],
                   help="LAB distance still counted as background (default %(default)s)")
    p.add_argument("--grabcut", action="store_true", help="refine the detected mask with GrabCut")
    p.add_argument("--feather", type=float, default=DEFAULTS["feather"], help="mask edge blur in pixels")
    p.add_argument("--grow", type=int, default=DEFAULTS["grow"], help="grow (+) or shrink (-) the mask, pixels")
    p.add_argument("--long-side", type=int, default=DEFAULTS["long_side"],
                   help="resize to this long side, padded to multiples of 8 (0 = keep size)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.sample and args.image:
        raise InputError("give either an IMAGE or --sample, not both.")
    if args.sample:
        from ..imaging.sample import sample_character

        image = sample_character(512, "flat")
    elif args.image:
        image = load_image(args.image)
    else:
        raise InputError("no input: give an IMAGE path, or --sample for the bundled sample character.")
    mask = None
    if args.mask:
        from ..imaging.images import to_mask

        mask = to_mask(load_image(args.mask, name="mask"), name="mask")
        if args.invert_mask:
            mask = 1.0 - mask
    result = prepare_white_background(
        image, mask, tolerance=args.tolerance, grabcut=args.grabcut, feather=args.feather,
        grow=args.grow, long_side=args.long_side,
    )
    out = save_image(result.image, args.output)
    h, w = result.mask.shape
    msg = f"wrote {out} ({w}x{h}, mask from {result.source}, character {result.mask.mean() * 100:.1f}% of the frame)"
    if args.mask_out:
        msg += f"; mask {save_image(result.mask, args.mask_out)}"
    print(msg)
    return 0
