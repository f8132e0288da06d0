"""ZRealism_AnimateDiffFuse: the generated still -> a short clip that keeps its identity, colours and pose
(core: zrealism_core.animation.animate)."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge, detail_inputs
from .inputs import float_input
from .speed_inputs import speed_inputs
from ..zrealism_core.errors import InputError
from ..zrealism_core.settings import CLIP_DEFAULTS as D, DEFAULT_PRESET, resolve


class ZRealism_AnimateDiffFuse:
    DESCRIPTION = (
        "Animate the generated still into a short clip that stays faithful to it: AnimateDiff video-to-video on the "
        "repeated still at a chosen strength, with the still's depth and OpenPose maps guiding every frame, and the "
        "frames' colours locked to the still. Reuses the loaded pipeline's weights (no second UNet copy). Clips longer "
        "than the motion model's window (32 frames) use FreeNoise context windows. Output: the frames as an IMAGE batch "
        "(for Z-Realism Save Video, VHS Video Combine, Save Image or CreateVideo) and the fps. A batch of stills gives "
        "their clips one after another (still i uses seed + i)."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "animate"
    RETURN_TYPES = ("IMAGE", "FLOAT", "STRING")
    RETURN_NAMES = ("frames", "fps", "report")
    OUTPUT_TOOLTIPS = (
        "The clip's frames, the still's size rounded to multiples of 8 (pingpong loops have 2 x frames - 2).",
        "The frame rate to play the clip at (the fps input, passed on).",
        "What AnimateDiff Fuse switched off or changed on your behalf, and why (one line each; also in the log).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        override = " Replaced by the connected params input, if any."
        return {
            "required": {
                "pipe": ("ZREALISM_PIPE", {"tooltip": "The pipeline from Z-Realism Model Loader (the same one that made the still)."}),
                "motion": ("ZREALISM_MOTION", {"tooltip": "The motion model from Z-Realism Motion Model Loader."}),
                "still": ("IMAGE", {"tooltip": "The generated still to animate (e.g. the sampler's image output). A batch gives one clip per image."}),
                "prompt": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "Motion prompt: the still's prompt plus the movement, e.g. 'photo of a woman, hair blowing in the wind'."}),
                "negative": ("STRING", {"multiline": True, "default": "",
                                        "tooltip": "What to avoid (e.g. 'flicker, deformed, cartoon')."}),
                "frames": ("INT", {"default": 16, "min": 1, "max": 256,
                                   "tooltip": "Number of frames. Above the motion model's window (32; 24 for v1) FreeNoise windows keep it coherent. Time grows with frames."}),
                "fps": float_input(8.0, 1.0, 60.0, 1.0, "Playback frame rate passed to the fps output (AnimateDiff was trained at about 8 fps)."),
                "strength": float_input(0.5, 0.05, 1.0, 0.01, "How far frames may move away from the still: 0.3 = subtle motion, 0.6 = more motion and less fidelity. Runs int(steps x strength) steps."),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                                 "tooltip": "Noise seed; the same seed and settings give the same clip."}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 100, "tooltip": "Steps of the full schedule (the clip runs int(steps x strength) of them)."}),
                "cfg": float_input(7.0, 0.0, 30.0, 0.1, "How strongly the prompt steers; 1 or less turns guidance off (about 2x faster)."),
                "loop": (["off", "crossfade", "pingpong"], {"default": "off",
                                                            "tooltip": "off; crossfade = extra tail frames blended into the first ones so the clip loops seamlessly (same length); pingpong = play forward then backward."}),
                "color_lock": float_input(1.0, 0.0, 1.0, 0.05, "Pull each frame's colours (LAB mean/spread) toward the still, inside the mask if connected. 0 = off, 1 = full."),
                "depth_scale": float_input(D["depth_scale"], 0.0, 2.0, 0.05, "Strength of the depth ControlNet on every frame; 0 turns it off." + override),
                "pose_scale": float_input(D["pose_scale"], 0.0, 2.0, 0.05, "Strength of the OpenPose ControlNet on every frame; 0 turns it off." + override),
                "control_end": float_input(D["control_end"], 0.05, 1.0, 0.01, "Fraction of the schedule the ControlNets act in." + override),
            },
            "optional": {
                "depth_map": ("IMAGE", {"tooltip": "The still's depth map (the sampler's depth_map output); without it the map is detected from the still. One for all stills or one per still."}),
                "pose_map": ("IMAGE", {"tooltip": "The still's OpenPose map (the sampler's pose_map output); without it the map is detected. One for all stills or one per still."}),
                "mask": ("MASK", {"tooltip": "Character mask (1 = character) limiting the colour lock. One for all stills or one per still."}),
                "params": ("ZREALISM_PARAMS", {"tooltip": "Recommendations from Heuristic Analyzer. When connected they REPLACE depth_scale, pose_scale and control_end."}),
                **detail_inputs.optional_inputs(),
                **speed_inputs(),
            },
        }

    def animate(self, pipe: Any, motion: Any, still: Any, prompt: str, negative: str, frames: int, fps: float,
                strength: float, seed: int, steps: int, cfg: float, loop: str, color_lock: float,
                depth_scale: float, pose_scale: float, control_end: float,
                depth_map: Any = None, pose_map: Any = None, mask: Any = None, params: Any = None,
                detail_scale: float = 0.0, detail_start: float = 0.0, detail_end: float = 1.0, detail_hint: str = "auto",
                detail_map: Any = None,
                cfg_end: float = 1.0, control_budget: str = "full", preset: str = DEFAULT_PRESET) -> Tuple[Any, float, str]:
        from ..zrealism_core.animation import animate
        from ..zrealism_core.engine import ZRealismPipeline
        from ..zrealism_core.models.motion import MotionModel
        from ..zrealism_core.runtime.fallback import expected_steps, job_report

        if not isinstance(pipe, ZRealismPipeline):
            raise InputError("pipe must come from Z-Realism Model Loader.")
        if not isinstance(motion, MotionModel):
            raise InputError("motion must come from Z-Realism Motion Model Loader.")
        widgets = dict(depth_scale=depth_scale, pose_scale=pose_scale, control_end=control_end, detail_scale=detail_scale,
                       detail_end=detail_end, cfg_end=cfg_end, control_budget=control_budget)
        v = resolve("clip", widgets, params, preset, pipe=pipe).values
        shapes = []

        def job(i: int, img: Any, given: dict, **hooks: Any) -> Any:
            clip = animate(
                pipe, img, motion_adapter=motion, frames=int(frames), fps=float(fps), strength=float(strength),
                seed=int(seed) + i, steps=int(steps), cfg=float(cfg), prompt=prompt, negative=negative,
                depth_map=given["depth_map"], pose_map=given["pose_map"], mask=given["mask"],
                depth_scale=v["depth_scale"], pose_scale=v["pose_scale"], control_end=v["control_end"],
                loop=loop, color_lock=float(color_lock),
                **detail_inputs.kwargs(v["detail_scale"], detail_start, v["detail_end"], detail_hint, given["detail_map"]),
                cfg_end=float(v["cfg_end"]), control_budget=v["control_budget"], **hooks,
            )
            if shapes and clip[0].shape != shapes[0]:
                raise InputError("the stills of a batch must have the same size to give one IMAGE batch of frames.")
            shapes.append(clip[0].shape)
            return clip

        # one OOM chain for the batch; inside ComfyUI its memory manager also tracks the motion modules
        clips, notes = bridge.run_batch(
            pipe, still, job, steps_per_image=expected_steps(int(steps), float(strength)), label="clip",
            images=dict(depth_map=depth_map, pose_map=pose_map, detail_map=detail_map), masks=dict(mask=mask))
        return bridge.numpy_to_image([frame for clip in clips for frame in clip]), float(fps), job_report(notes)


NODE_CLASS_MAPPINGS = {"ZRealism_AnimateDiffFuse": ZRealism_AnimateDiffFuse}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_AnimateDiffFuse": "Z-Realism AnimateDiff Fuse (still -> clip)"}
