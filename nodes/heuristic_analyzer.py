"""ZRealism_HeuristicAnalyzer: measure a drawing's structure, recommend settings and prompts (core: zrealism_core.analysis)."""
from __future__ import annotations

from typing import Any, Optional

from . import bridge
from ..zrealism_core.analysis import analyze


class ZRealism_HeuristicAnalyzer:
    DESCRIPTION = (
        "Measure how much structure the character drawing has (edges, line art, shading, palette, brightness) and "
        "recommend ControlNet scales, denoise, steps, CFG and control end, plus positive/negative prompts within "
        "CLIP's 77 tokens. Richer structure -> stronger control and lower denoise; flat art -> more denoise, "
        "lighter depth. For a batch, the FIRST image is analysed (one set of settings serves all frames)."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "INT", "FLOAT", "FLOAT", "STRING", "STRING", "STRING", "ZREALISM_PARAMS")
    RETURN_NAMES = ("depth_scale", "pose_scale", "denoise", "steps", "cfg", "control_end",
                    "positive", "negative", "report", "params")
    OUTPUT_TOOLTIPS = (
        "Recommended depth ControlNet strength (0.3-1.0).",
        "Recommended OpenPose ControlNet strength (0.3-1.0).",
        "Recommended img2img denoise / strength (0.35-0.75).",
        "Recommended sampling steps (20-40).",
        "Recommended CFG scale (5-9).",
        "Recommended end of ControlNet guidance, as a fraction of the steps (0.6-1.0).",
        "Suggested positive prompt: your subject + realism and lighting words (at most 77 CLIP tokens).",
        "Suggested negative prompt (at most 77 CLIP tokens).",
        "Readable report: measured features, recommendations and why.",
        "All recommendations as one bundle for the Z-Realism sampler.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The drawing, ideally on white (output of White Background Prep). For a batch, the first image is analysed."}),
                "subject": ("STRING", {
                    "default": "", "multiline": False,
                    "tooltip": "What the character is, in a few words (e.g. 'a young woman with orange hair'); it starts the positive prompt."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Optional character mask, 1 = character (the MASK output of White Background Prep). "
                                             "Without it, transparency or a flat-background detection is used."}),
            },
        }

    def run(self, image, subject: str = "", mask: Optional[Any] = None):
        frames = bridge.image_to_numpy(image)
        m = None
        if mask is not None:
            masks = bridge.mask_to_numpy(mask)
            bridge.check_batch("mask", masks, len(frames))
            m = masks[0]
        result = analyze(frames[0], m, subject=subject or "")
        p = result.params
        return (float(p.depth_scale), float(p.pose_scale), float(p.denoise), int(p.steps), float(p.cfg),
                float(p.control_end), result.positive, result.negative, result.report, p)


NODE_CLASS_MAPPINGS = {"ZRealism_HeuristicAnalyzer": ZRealism_HeuristicAnalyzer}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_HeuristicAnalyzer": "Heuristic Analyzer (Z-Realism)"}
