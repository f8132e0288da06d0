"""ZRealism_DualControlNetSampler: drawing -> photo with SD1.5 img2img + depth and OpenPose ControlNets
(core: zrealism_core.engine.transform)."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge, detail_inputs
from .speed_inputs import speed_inputs, step_reuse_inputs
from ..zrealism_core.control.detail import scale_from_params
from ..zrealism_core.errors import InputError
from ..zrealism_core.settings import SAMPLER_DEFAULTS as D, apply_params, apply_preset, window_notes
from ..zrealism_core.models.schedulers import DEFAULT_SCHEDULER, SCHEDULER_NAMES

def _float(default: float, lo: float, hi: float, step: float, tooltip: str) -> tuple:
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tooltip})


class ZRealism_DualControlNetSampler:
    DESCRIPTION = (
        "Turn a prepared drawing into a photo: SD1.5 img2img at medium denoise, guided by a depth ControlNet "
        "(keeps geometry) and an OpenPose ControlNet (keeps the pose). Depth and pose maps are detected from the "
        "image unless you connect your own. Optional colour lock pulls the result's colours toward the drawing "
        "on the masked character. A batch of images gives a batch of results (image i uses seed + i)."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE", "STRING")
    RETURN_NAMES = ("image", "depth_map", "pose_map", "report")
    OUTPUT_TOOLTIPS = (
        "The photorealistic result, the input's size rounded to multiples of 8.",
        "The depth map that guided it (detected, or the one you connected, resized).",
        "The OpenPose map that guided it (detected, or the one you connected, resized).",
        "What the sampler switched off or changed on your behalf, and why (one line each; also in the log).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        override = " Replaced by the connected params input, if any."
        return {
            "required": {
                "pipe": ("ZREALISM_PIPE", {"tooltip": "The pipeline from Z-Realism Model Loader."}),
                "image": ("IMAGE", {"tooltip": "The prepared drawing (ideally the character on white, from White Background Prep). A batch runs image by image."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "What the photo should show (e.g. from Heuristic Analyzer's positive output)."}),
                "negative": ("STRING", {"multiline": True, "default": "",
                                        "tooltip": "What to avoid (e.g. 'cartoon, drawing, lowres')."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Noise seed; the same seed and settings give the same image. Image i of a batch uses seed + i."}),
                "steps": ("INT", {"default": D["steps"], "min": 1, "max": 150,
                                  "tooltip": "Sampling steps of the full schedule; img2img runs int(steps x denoise) of them." + override}),
                "cfg": _float(D["cfg"], 0.0, 30.0, 0.1, "How strongly the prompt steers (classifier-free guidance); 1 or less turns it off." + override),
                "denoise": _float(D["denoise"], 0.01, 1.0, 0.01, "How much of the drawing is repainted: 0.4 keeps it close, 0.7 gives more realism." + override),
                "depth_scale": _float(D["depth_scale"], 0.0, 2.0, 0.05, "Strength of the depth ControlNet (geometry); 0 turns it off." + override),
                "pose_scale": _float(D["pose_scale"], 0.0, 2.0, 0.05, "Strength of the OpenPose ControlNet (pose); 0 turns it off." + override),
                "depth_start": _float(D["depth_start"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the depth ControlNet starts acting."),
                "depth_end": _float(D["depth_end"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the depth ControlNet stops (end <= start turns it off)." + override.replace("Replaced", "Replaced (control_end)")),
                "pose_start": _float(D["pose_start"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the OpenPose ControlNet starts acting."),
                "pose_end": _float(D["pose_end"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the OpenPose ControlNet stops (end <= start turns it off)." + override.replace("Replaced", "Replaced (control_end)")),
                "scheduler": (list(SCHEDULER_NAMES), {"default": DEFAULT_SCHEDULER,
                                                       "tooltip": "Sampler: dpmpp_2m_karras (good at 20-30 steps), euler, euler_ancestral, dpmpp_2m, ddim, unipc."}),
                "color_lock": _float(D["color_lock"], 0.0, 1.0, 0.05, "Colour lock strength: pulls the result's colours (LAB mean/spread) toward the drawing's "
                                     "inside the mask, countering img2img's saturation loss. 0 = off, 1 = full."),
                "depth_method": (["auto", "depth_anything", "midas"], {
                    "default": "auto",
                    "tooltip": "Depth detector when no depth_map is connected: Depth Anything V2 Small (fast), MiDaS (slow on CPU), "
                               "or auto (Depth Anything if its files are in models/zrealism_annotators, else MiDaS)."}),
                "detect_resolution": ("INT", {
                    "default": 512, "min": 64, "max": 2048, "step": 64,
                    "tooltip": "Short side (pixels) the depth/pose detectors work at; the maps are resized to the image. Ignored for connected maps."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Character mask (1 = character), e.g. from White Background Prep; limits the colour lock to the character. One mask for all images or one per image."}),
                "depth_map": ("IMAGE", {"tooltip": "Your own depth map (e.g. from another preprocessor pack); skips depth detection. One for all images or one per image."}),
                "pose_map": ("IMAGE", {"tooltip": "Your own OpenPose map; skips pose detection. One for all images or one per image."}),
                "params": ("ZREALISM_PARAMS", {"tooltip": "Recommendations from Heuristic Analyzer. When connected they REPLACE the widgets "
                                                         "steps, cfg, denoise, depth_scale, pose_scale and depth_end/pose_end (its control_end); "
                                                         "disconnect it to use the widget values."}),
                **detail_inputs.optional_inputs(),
                **speed_inputs(),
                **step_reuse_inputs(),
            },
        }

    def sample(self, pipe: Any, image: Any, prompt: str, negative: str, seed: int, steps: int, cfg: float,
               denoise: float, depth_scale: float, pose_scale: float, depth_start: float, depth_end: float,
               pose_start: float, pose_end: float, scheduler: str, color_lock: float,
               depth_method: str = "auto", detect_resolution: int = 512, mask: Any = None, depth_map: Any = None, pose_map: Any = None, params: Any = None,
               detail_scale: float = 0.0, detail_start: float = 0.0, detail_end: float = 1.0, detail_hint: str = "auto",
               detail_map: Any = None,
               cfg_end: float = 1.0, control_budget: str = "full", preset: str = "quality",
               control_reuse: int = 1, unet_reuse: int = 1) -> Tuple[Any, Any, Any, str]:
        from ..zrealism_core.engine import ZRealismPipeline, transform
        from ..zrealism_core.runtime.fallback import expected_steps, job_report

        if not isinstance(pipe, ZRealismPipeline):
            raise InputError("pipe must come from Z-Realism Model Loader.")
        v = apply_params(dict(steps=steps, cfg=cfg, denoise=denoise, depth_scale=depth_scale, pose_scale=pose_scale,
                              depth_end=depth_end, pose_end=pose_end, detail_scale=detail_scale), params)
        d_scale = scale_from_params(pipe, detail_scale, v)
        v = apply_preset(dict(v, cfg_end=cfg_end, control_budget=control_budget, detail_end=detail_end,
                              control_reuse=control_reuse, unet_reuse=unet_reuse), preset, "still")
        images = bridge.image_to_numpy(image)
        batch = len(images)
        masks = bridge.mask_to_numpy(mask) if mask is not None else None
        depths = bridge.image_to_numpy(depth_map) if depth_map is not None else None
        poses = bridge.image_to_numpy(pose_map) if pose_map is not None else None
        details = bridge.image_to_numpy(detail_map) if detail_map is not None else None
        for name, items in (("mask", masks), ("depth_map", depths), ("pose_map", poses), ("detail_map", details)):
            if items is not None:
                bridge.check_batch(name, items, batch)

        per_image = max(expected_steps(int(v["steps"]), float(v["denoise"])), 1)
        steps_of = bridge.batch_progress(batch * per_image)  # progress + ComfyUI's latent preview per step
        chain = pipe.chain(bridge.placement(pipe))  # one OOM chain for the batch (ComfyUI's memory manager inside ComfyUI)
        bridge.check_interrupted()
        results, dmaps, pmaps, notes = [], [], [], []
        for i, img in enumerate(images):
            r = transform(
                pipe, img,
                mask=bridge.pick(masks, i) if masks is not None else None,
                depth_map=bridge.pick(depths, i) if depths is not None else None,
                pose_map=bridge.pick(poses, i) if poses is not None else None,
                prompt=prompt, negative=negative, seed=int(seed) + i,
                steps=int(v["steps"]), cfg=float(v["cfg"]), denoise=float(v["denoise"]),
                depth_scale=float(v["depth_scale"]), pose_scale=float(v["pose_scale"]),
                depth_start=float(depth_start), depth_end=float(v["depth_end"]),
                pose_start=float(pose_start), pose_end=float(v["pose_end"]),
                scheduler=scheduler, color_lock=float(color_lock), chain=chain, cancel=bridge.cancel_check(),
                depth_method=depth_method, detect_resolution=int(detect_resolution),
                **steps_of(i * per_image),
                **detail_inputs.kwargs(d_scale, detail_start, v["detail_end"], detail_hint, details, i),
                cfg_end=float(v["cfg_end"]), control_budget=v["control_budget"],
                control_reuse=int(v["control_reuse"]), unet_reuse=int(v["unet_reuse"]),
            )
            results.append(r.image)
            dmaps.append(r.depth_map)
            pmaps.append(r.pose_map)
            notes.append((f"image {i + 1}", r.notes))
        chain.close()  # the next batch starts from the top of the chain (an error closes it on the way out)
        notes.insert(0, ("params", window_notes(v, params, dict(depth_start=depth_start, pose_start=pose_start))))
        return bridge.numpy_to_image(results), bridge.numpy_to_image(dmaps), bridge.numpy_to_image(pmaps), job_report(notes)


NODE_CLASS_MAPPINGS = {"ZRealism_DualControlNetSampler": ZRealism_DualControlNetSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_DualControlNetSampler": "Z-Realism Dual ControlNet Sampler"}
