"""ZRealism_DualControlNetSampler: drawing -> photo with SD1.5 img2img + depth and OpenPose ControlNets
(core: zrealism_core.engine.transform)."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge, detail_inputs
from .inputs import float_input
from .speed_inputs import speed_inputs, step_reuse_inputs
from ..zrealism_core.errors import InputError
from ..zrealism_core.settings import DEFAULT_PRESET, SAMPLER_DEFAULTS as D, resolve
from ..zrealism_core.models.schedulers import DEFAULT_SCHEDULER, SCHEDULER_NAMES


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
                "cfg": float_input(D["cfg"], 0.0, 30.0, 0.1, "How strongly the prompt steers (classifier-free guidance); 1 or less turns it off." + override),
                "denoise": float_input(D["denoise"], 0.01, 1.0, 0.01, "How much of the drawing is repainted: 0.4 keeps it close, 0.7 gives more realism." + override),
                "depth_scale": float_input(D["depth_scale"], 0.0, 2.0, 0.05, "Strength of the depth ControlNet (geometry); 0 turns it off." + override),
                "pose_scale": float_input(D["pose_scale"], 0.0, 2.0, 0.05, "Strength of the OpenPose ControlNet (pose); 0 turns it off." + override),
                "depth_start": float_input(D["depth_start"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the depth ControlNet starts acting."),
                "depth_end": float_input(D["depth_end"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the depth ControlNet stops (end <= start turns it off)." + override.replace("Replaced", "Replaced (control_end)")),
                "pose_start": float_input(D["pose_start"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the OpenPose ControlNet starts acting."),
                "pose_end": float_input(D["pose_end"], 0.0, 1.0, 0.01, "Fraction of the schedule at which the OpenPose ControlNet stops (end <= start turns it off)." + override.replace("Replaced", "Replaced (control_end)")),
                "scheduler": (list(SCHEDULER_NAMES), {"default": DEFAULT_SCHEDULER,
                                                       "tooltip": "Sampler: dpmpp_2m_karras (good at 20-30 steps), euler, euler_ancestral, dpmpp_2m, ddim, unipc."}),
                "color_lock": float_input(D["color_lock"], 0.0, 1.0, 0.05, "Colour lock strength: pulls the result's colours (LAB mean/spread) toward the drawing's "
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
               cfg_end: float = 1.0, control_budget: str = "full", preset: str = DEFAULT_PRESET,
               control_reuse: int = 1, unet_reuse: int = 1) -> Tuple[Any, Any, Any, str]:
        from ..zrealism_core.engine import ZRealismPipeline, transform
        from ..zrealism_core.runtime.fallback import expected_steps, job_report

        if not isinstance(pipe, ZRealismPipeline):
            raise InputError("pipe must come from Z-Realism Model Loader.")
        widgets = dict(steps=steps, cfg=cfg, denoise=denoise, depth_scale=depth_scale, pose_scale=pose_scale,
                       depth_start=depth_start, depth_end=depth_end, pose_start=pose_start, pose_end=pose_end,
                       detail_scale=detail_scale, detail_end=detail_end, cfg_end=cfg_end, control_budget=control_budget,
                       control_reuse=control_reuse, unet_reuse=unet_reuse)
        settings = resolve("still", widgets, params, preset, pipe=pipe)
        v = settings.values

        def job(i: int, img: Any, given: dict, **hooks: Any) -> Any:
            return transform(
                pipe, img, mask=given["mask"], depth_map=given["depth_map"], pose_map=given["pose_map"],
                prompt=prompt, negative=negative, seed=int(seed) + i,
                steps=int(v["steps"]), cfg=float(v["cfg"]), denoise=float(v["denoise"]),
                depth_scale=float(v["depth_scale"]), pose_scale=float(v["pose_scale"]),
                depth_start=float(v["depth_start"]), depth_end=float(v["depth_end"]),
                pose_start=float(v["pose_start"]), pose_end=float(v["pose_end"]),
                scheduler=scheduler, color_lock=float(color_lock),
                depth_method=depth_method, detect_resolution=int(detect_resolution),
                **detail_inputs.kwargs(v["detail_scale"], detail_start, v["detail_end"], detail_hint, given["detail_map"]),
                cfg_end=float(v["cfg_end"]), control_budget=v["control_budget"],
                control_reuse=int(v["control_reuse"]), unet_reuse=int(v["unet_reuse"]),
                decode_channels_last=bool(v.get("decode_channels_last", False)), **hooks,  # set by a preset only
            )

        results, notes = bridge.run_batch(
            pipe, image, job, steps_per_image=expected_steps(int(v["steps"]), float(v["denoise"])),
            images=dict(depth_map=depth_map, pose_map=pose_map, detail_map=detail_map), masks=dict(mask=mask))
        notes[:0] = [("preset", settings.preset_notes), ("params", settings.notes)]
        return (bridge.numpy_to_image([r.image for r in results]), bridge.numpy_to_image([r.depth_map for r in results]),
                bridge.numpy_to_image([r.pose_map for r in results]), job_report(notes))


NODE_CLASS_MAPPINGS = {"ZRealism_DualControlNetSampler": ZRealism_DualControlNetSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_DualControlNetSampler": "Z-Realism Dual ControlNet Sampler"}
