"""ZRealism_ControlMaps: our offline depth and OpenPose detectors as a node, for core ControlNet Apply or any pack."""
from __future__ import annotations

from typing import Any, Optional, Tuple

from . import bridge
from ..zrealism_core.control.maps import DEPTH_METHODS

_store: Optional[Any] = None  # detectors loaded outside a pipeline, tracked by ComfyUI's memory manager


def shared_detector_store() -> Optional[Any]:
    """The detector store of the nodes without a pipeline (this one, the Fidelity Evaluator's control fidelity):
    ComfyUI's memory manager tracks its detectors and "Unload models" / POST /free drops them (bridge.detector_store);
    None outside ComfyUI (the core's process-wide cache)."""
    global _store
    if _store is None:
        _store = bridge.detector_store()
    return _store


class ZRealism_ControlMaps:
    DESCRIPTION = (
        "Depth and OpenPose control maps of an image, made by the same offline detectors and the same code the "
        "Z-Realism sampler uses when no maps are connected (Depth Anything V2 Small or MiDaS, OpenPose body; weights "
        "from models/zrealism_annotators or comfyui_controlnet_aux's ckpts). Feed them to ComfyUI's Apply ControlNet, "
        "to the Z-Realism sampler's depth_map/pose_map, or to any other pack."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "detect"
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("depth_map", "pose_map")
    OUTPUT_TOOLTIPS = (
        "Depth map (near = bright), the image's size; for a depth ControlNet (control_v11f1p_sd15_depth).",
        "OpenPose skeleton on black, the image's size; for an OpenPose ControlNet (control_v11p_sd15_openpose). "
        "All black when nobody is found.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The picture to read depth and pose from, usually the output of White Background Prep."}),
                "depth_method": (list(DEPTH_METHODS), {
                    "default": "auto",
                    "tooltip": "Depth detector: Depth Anything V2 Small (fast), MiDaS (slow on CPU), or auto "
                               "(Depth Anything if its files are in models/zrealism_annotators, else MiDaS)."}),
                "detect_resolution": ("INT", {
                    "default": 512, "min": 64, "max": 2048, "step": 64,
                    "tooltip": "Short side (pixels) the detectors work at; the maps are resized back to the image."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Character mask (1 = character), e.g. from White Background Prep: OpenPose then "
                                             "runs on the character's crop, so a small figure gets the detector's full resolution. "
                                             "One mask for all images or one per image."}),
            },
        }

    def detect(self, image: Any, depth_method: str = "auto", detect_resolution: int = 512, mask: Any = None) -> Tuple[Any, Any]:
        from ..zrealism_core.control.maps import prepare_maps
        from ..zrealism_core.models.detectors import using_store
        from ..zrealism_core.imaging.images import to_mask

        device, _ = bridge.engine_device_dtype("auto", "auto")
        device = "cpu" if str(device) == "cpu" else str(device)
        depths, poses = [], []
        with using_store(shared_detector_store()):
            for _i, rgb, given in bridge.each_image(image, masks=dict(mask=mask), cancel=True):
                m = to_mask(given["mask"], rgb.shape[:2], name="mask") if given["mask"] is not None else None
                maps = prepare_maps(rgb, method=depth_method, annotator_dirs=bridge.annotator_dirs(),
                                    resolution=int(detect_resolution), device=device, mask=m)
                depths.append(maps.depth)
                poses.append(maps.pose)
        return bridge.numpy_to_image(depths), bridge.numpy_to_image(poses)


NODE_CLASS_MAPPINGS = {"ZRealism_ControlMaps": ZRealism_ControlMaps}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_ControlMaps": "Z-Realism Control Maps (depth + OpenPose)"}
