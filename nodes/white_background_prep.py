"""ZRealism_WhiteBackgroundPrep: cut the character out and put it on pure white (core: zrealism_core.prep)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import bridge
from ..zrealism_core.prep import DEFAULTS, prepare_white_background


def _mask_has_background(m: np.ndarray) -> bool:
    """A background mask (1 = background) that marks no background carries no information:
    it is what LoadImage gives for a picture without transparency."""
    return float(m.max()) > 0.0


class ZRealism_WhiteBackgroundPrep:
    DESCRIPTION = (
        "Cut the character out of a drawing and put it on pure white. The mask comes from the MASK input, "
        "else the image's transparency, else automatic detection of a flat background (colours close to the "
        "border colour and connected to the border, so white eyes or shirts inside the character stay). "
        "Edge pixels are cleaned of the old background colour (no halo). Optional GrabCut, feather, "
        "grow/shrink and resize to multiples of 8."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "prepare"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = (
        "The character on pure white (RGB, float 0..1), same size as the input unless long_side is set.",
        "The character mask: 1 = character, 0 = background (soft on anti-aliased edges).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The drawing (a batch is processed image by image). RGBA input: the alpha is used as the mask."}),
                "tolerance": ("FLOAT", {
                    "default": float(DEFAULTS["tolerance"]), "min": 0.0, "max": 100.0, "step": 0.5,
                    "tooltip": "Automatic detection: how far (in LAB colour units) a colour may be from the border colour and still "
                               "count as background. Raise it for noisy or slightly shaded backgrounds; lower it if parts of the "
                               "character vanish. Ignored when a mask or transparency is given."}),
                "grabcut": ("BOOLEAN", {
                    "default": bool(DEFAULTS["grabcut"]),
                    "tooltip": "Refine the automatic mask with GrabCut (helps soft or gradient backgrounds; slower)."}),
                "feather": ("FLOAT", {
                    "default": float(DEFAULTS["feather"]), "min": 0.0, "max": 64.0, "step": 0.5,
                    "tooltip": "Soften the mask edge: Gaussian blur radius (sigma) in pixels. 0 = keep the drawing's own edges."}),
                "grow": ("INT", {
                    "default": int(DEFAULTS["grow"]), "min": -64, "max": 64, "step": 1,
                    "tooltip": "Grow (positive) or shrink (negative) the mask by this many pixels before compositing."}),
                "long_side": ("INT", {
                    "default": int(DEFAULTS["long_side"]), "min": 0, "max": 8192, "step": 8,
                    "tooltip": "Resize so the long side is this many pixels and pad with white so both sides are multiples of 8 "
                               "(aspect ratio kept). 0 = keep the size."}),
                "mask_is_background": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Which convention the MASK input uses. On: 1 = background, as ComfyUI's Load Image outputs "
                               "(1 where the PNG was transparent): connect it directly. Off: 1 = character (e.g. a mask from "
                               "this node or a segmentation node). A mask with no background in it (Load Image's mask for a "
                               "picture without transparency) is ignored and the background is detected automatically."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Optional mask: one for the whole batch or one per image; see mask_is_background for its convention."}),
            },
        }

    def prepare(self, image, tolerance=12.0, grabcut=False, feather=0.0, grow=0, long_side=0,
                mask_is_background=True, mask: Optional[Any] = None):
        out_images, out_masks = [], []
        for _i, frame, given in bridge.each_image(image, masks=dict(mask=mask)):
            m = given["mask"]
            if m is not None:
                if mask_is_background:
                    m = (1.0 - m) if _mask_has_background(m) else None
                elif float(m.min()) >= 1.0:
                    m = None  # an all-character mask says nothing: detect instead
            result = prepare_white_background(
                frame, m, tolerance=float(tolerance), grabcut=bool(grabcut), feather=float(feather),
                grow=int(grow), long_side=int(long_side),
            )
            out_images.append(result.image)
            out_masks.append(result.mask)
        return (bridge.numpy_to_image(out_images), bridge.numpy_to_mask(out_masks))


NODE_CLASS_MAPPINGS = {"ZRealism_WhiteBackgroundPrep": ZRealism_WhiteBackgroundPrep}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_WhiteBackgroundPrep": "White Background Prep (Z-Realism)"}
