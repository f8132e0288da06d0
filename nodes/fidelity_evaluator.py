"""ZRealism_FidelityEvaluator: fidelity and realism scores plus a panel (core: zrealism_core.evaluation)."""
from __future__ import annotations

from typing import Any, Optional

from . import bridge
from .control_maps import shared_detector_store
from ..zrealism_core.errors import InputError
from ..zrealism_core.evaluation import SCORE_NAMES, evaluate, evaluate_video
from ..zrealism_core.evaluation.panel import render_panel


class ZRealism_FidelityEvaluator:
    DESCRIPTION = (
        "Scores how faithful a photoreal result is to its source drawing, each 0..1 (1 = perfect), on the character only: "
        "silhouette (mask IoU + boundary F, DAVIS J&F), edge (correlation of smoothed Laplacian-of-Gaussian edge maps), "
        "color (CIEDE2000 after a low-pass), palette (dominant colours matched), texture_realism (no-reference "
        "natural-scene statistics: photo-like texture vs flat fills, plastic smoothing and blur) and, for a batch = the "
        "frames of a clip, temporal (optical-flow warping error + luminance flicker). overall = geometric mean of "
        "silhouette, edge, color, texture_realism (and temporal). Control fidelity (were the ControlNets obeyed?) is "
        "reported in the JSON, not in overall: edge_f (line art vs result edges), depth_corr and pose_pck (when the "
        "detectors' files are present; connect the sampler's maps to skip re-detecting the source). Also outputs a JSON report and a panel image; the "
        "scores are shown on the node and stored in the prompt history (/history) for API clients."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "evaluate"
    OUTPUT_NODE = True
    RETURN_TYPES = ("FLOAT",) * len(SCORE_NAMES) + ("STRING", "IMAGE")
    RETURN_NAMES = SCORE_NAMES + ("report", "panel")
    OUTPUT_TOOLTIPS = (
        "Geometric mean of the gating scores (silhouette, edge, color, texture_realism, and temporal for a clip).",
        "Shape/pose kept: mean of mask IoU and boundary F-measure between source and result characters.",
        "Line structure kept: Pearson correlation of smoothed |LoG| edge maps on the character (0 if unrelated).",
        "Colour kept: mean CIEDE2000 after a low-pass, on the character, mapped to 0..1 (5 dE -> 1, 25 dE -> 0).",
        "Dominant colours kept: k-means palettes matched by the Hungarian method on CIEDE2000 (reported, not gated).",
        "Photo-like texture of the result, no reference: natural-scene statistics; flat fills, plastic smoothing, blur score low.",
        "Clip only: temporal consistency from optical-flow warping error and luminance flicker; 1.0 for a single image.",
        "The full report as JSON: scores, per-frame scores for a clip, diagnostics (colour cast, brightness shift, ...), notes, "
        "and control (control fidelity, not in overall: edge_f, depth_corr, pose_pck; null when not computed).",
        "Panel: source | result | edge overlay (source red, result cyan) | control edges (source line art red, result edges "
        "cyan, edge_f) | colour-difference heat map | score bars.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "source": ("IMAGE", {"tooltip": "The source drawing (ideally the White Background Prep output). One image for "
                                                "all result frames, or one per frame."}),
                "result": ("IMAGE", {"tooltip": "The photoreal result. A batch is read as the frames of a clip: per-frame "
                                                "scores plus temporal consistency. Resized to the source size if it differs."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Character mask of the SOURCE, 1 = character (e.g. the White Background Prep mask "
                                             "output). Load Image's mask is the opposite (1 = transparent): invert it first. "
                                             "Unconnected: the near-white background touching the border is detected."}),
                "result_mask": ("MASK", {"tooltip": "Character mask of the RESULT, 1 = character; one for all frames or one per "
                                                    "frame. Unconnected: detected like the source's."}),
                "depth_map": ("IMAGE", {"tooltip": "The source's depth map (the sampler's depth_map output), so it is not detected "
                                                   "again for the control score depth_corr. Unconnected: detected when the depth "
                                                   "detector's files are in models/zrealism_annotators."}),
                "pose_map": ("IMAGE", {"tooltip": "The source's OpenPose map (the sampler's pose_map output); its keypoints are read "
                                                  "back for the control score pose_pck. Unconnected: detected when "
                                                  "body_pose_model.pth is in models/zrealism_annotators."}),
            },
        }

    def evaluate(self, source, result, mask: Optional[Any] = None, result_mask: Optional[Any] = None,
                 depth_map: Optional[Any] = None, pose_map: Optional[Any] = None):
        from ..zrealism_core.models.detectors import using_store

        sources = bridge.image_to_numpy(source)
        # the source's control maps: one per source image (a clip uses the first)
        maps = {name: bridge.image_to_numpy(m)[0] if m is not None else None
                for name, m in (("depth_map", depth_map), ("pose_map", pose_map))}
        maps["annotator_dirs"] = bridge.annotator_dirs()
        frames = bridge.image_to_numpy(result)
        bridge.check_batch("source", sources, len(frames))
        src_masks = bridge.mask_to_numpy(mask) if mask is not None else None
        if src_masks is not None and len(src_masks) not in (1, len(sources)):  # the sources' rule: one, or one per source
            raise InputError(f"mask has a batch of {len(src_masks)} for {len(sources)} source image(s); "
                             "connect one mask for all source images, or one per source image.")
        res_masks = bridge.mask_to_numpy(result_mask) if result_mask is not None else None
        if res_masks is not None:
            bridge.check_batch("result_mask", res_masks, len(frames))

        with using_store(shared_detector_store()):  # inside ComfyUI its unload drops the detectors (not the core's cache)
            if len(frames) == 1 and len(sources) == 1:
                report = evaluate(sources[0], frames[0], src_masks[0] if src_masks else None,
                                  result_mask=res_masks[0] if res_masks else None, **maps)
                temporal = 1.0  # a still has no temporal dimension: neutral value
            else:
                src_mask = (src_masks if len(src_masks) > 1 else src_masks[0]) if src_masks else None
                report = evaluate_video(sources if len(sources) > 1 else sources[0], frames, src_mask,
                                        result_masks=res_masks, **maps)
                temporal = report.scores["temporal"]
        panel = render_panel(None, None, report)
        text = report.to_json(indent=None)
        values = tuple(float(report.scores.get(k, temporal)) if k != "temporal" else float(temporal) for k in SCORE_NAMES)
        return {
            "ui": {"text": [report.summary(), text]},
            "result": values + (text, bridge.numpy_to_image([panel])),
        }


NODE_CLASS_MAPPINGS = {"ZRealism_FidelityEvaluator": ZRealism_FidelityEvaluator}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_FidelityEvaluator": "Fidelity Evaluator (Z-Realism)"}
