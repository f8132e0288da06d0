"""Deprecated old path: moved to zrealism_core.control.maps, zrealism_core.control.pose_crop, zrealism_core.control.hints, zrealism_core.models.detectors, zrealism_core.models.depth_anything (kept one release; see zrealism_core/_moved.py)."""
from ._moved import forward

__getattr__ = forward(__name__, ["zrealism_core.control.maps", "zrealism_core.control.pose_crop", "zrealism_core.control.hints", "zrealism_core.models.detectors", "zrealism_core.models.depth_anything"],
                      {"_resize": "resize_map", "_cached": "cached", "_load_midas": "load_midas", "_load_openpose": "load_openpose", "_openpose": "openpose", "_check_weights_only": "check_weights_only", "_LOAD_ERRORS": "LOAD_ERRORS", "_DA_PROCESSOR_DEFAULTS": "PROCESSOR_DEFAULTS", "_load_depth_anything": "load_folder", "_load_depth_anything_original": "load_original", "_run_depth_anything": "run", "_detect_on_crop": "detect_on_crop"})
