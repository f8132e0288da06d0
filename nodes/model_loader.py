"""ZRealism_ModelLoader: SD1.5 checkpoint + depth and OpenPose ControlNets (+ optional VAE) -> ZREALISM_PIPE."""
from __future__ import annotations

from typing import Any, Tuple

from . import bridge
from ..zrealism_core.errors import ModelFileError
from ..zrealism_core.runtime.device import trim_when_freed
from ..zrealism_core.models.loaders import ROLES

NONE = "none"


def _choices(names: list) -> list:
    # an empty combo cannot be queued; show a placeholder that explains itself when run
    return names or [NONE]


def _resolve(folder: str, name: str, role: str) -> str:
    path = bridge.resolve_base_model(name) if role == "base" else bridge.resolve_model(folder, name)
    if not path:
        where = ", ".join(bridge.folder_locations(folder)) or ROLES[role]["where"]
        if role == "base":
            where = ", ".join(bridge.folder_locations("checkpoints") + bridge.folder_locations("diffusers")) or where
        r = ROLES[role]
        raise ModelFileError(
            f"{r['what']} {name!r} was not found (looked in: {where}). Put the file there and refresh; get {r['get']}."
        )
    return path


class ZRealism_ModelLoader:
    DESCRIPTION = (
        "Load Stable Diffusion 1.5 with a depth and an OpenPose ControlNet for the Z-Realism sampler. "
        "Works offline with the files you already have: a checkpoint from models/checkpoints (or a diffusers "
        "folder from models/diffusers) and ControlNets from models/controlnet (original or diffusers layout). "
        "The models join ComfyUI's memory management: ComfyUI keeps them while the graph needs them, and its 'Unload models' / 'Free model and node cache' release them. "
        "Prompts are read as in ComfyUI's CLIP Text Encode: (word:1.2) weighting, embedding:NAME from models/embeddings, "
        "prompts longer than 77 tokens."
    )
    CATEGORY = bridge.CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("ZREALISM_PIPE",)
    RETURN_NAMES = ("pipe",)
    OUTPUT_TOOLTIPS = ("The loaded SD1.5 + depth + OpenPose ControlNet pipeline; connect it to Z-Realism Dual ControlNet Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        controlnets = _choices(bridge.list_models("controlnet"))
        return {
            "required": {
                "checkpoint": (_choices(bridge.list_base_models()), {
                    "tooltip": "SD1.5 checkpoint (models/checkpoints) or diffusers folder (models/diffusers, shown as "
                               "'[diffusers] name'). SDXL and SD2 checkpoints are rejected with a message."}),
                "depth_controlnet": (controlnets, {
                    "tooltip": "Depth ControlNet for SD1.5 from models/controlnet, e.g. control_v11f1p_sd15_depth(_fp16).safetensors."}),
                "pose_controlnet": (controlnets, {
                    "tooltip": "OpenPose ControlNet for SD1.5 from models/controlnet, e.g. control_v11p_sd15_openpose(_fp16).safetensors."}),
                "vae": ([NONE] + bridge.list_models("vae"), {
                    "default": NONE,
                    "tooltip": "Optional separate VAE from models/vae (e.g. vae-ft-mse-840000-ema-pruned). 'none' uses the checkpoint's own VAE."}),
                "precision": (list(bridge.PRECISIONS), {
                    "default": "auto",
                    "tooltip": "Weight precision. auto = ComfyUI's choice for the device (fp16 on most GPUs, fp32 on the CPU). "
                               "bf16 is about 2x faster than fp32 on CPUs with native bf16 (avx512_bf16/AMX) but much slower on CPUs without it."}),
                "device": (list(bridge.DEVICES), {
                    "default": "auto",
                    "tooltip": "auto = ComfyUI's device (its --cpu flag is honoured); cpu = always run this pipeline on the CPU."}),
                "cpu_fallback": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "If the GPU runs out of memory: free memory and retry with model CPU offload, then on the CPU "
                               "in fp32 (slow but it finishes). Off = stop with an out-of-memory error instead."}),
            },
            "optional": {
                "detail_controlnet": ([NONE] + bridge.list_models("controlnet"), {
                    "default": NONE,
                    "tooltip": "Optional third SD1.5 ControlNet that keeps the drawing's detail: tile "
                               "(control_v11f1e_sd15_tile: layout and colours), line art (control_v11p_sd15_lineart, "
                               "control_v11p_sd15s2_lineart_anime) or canny (control_v11p_sd15_canny), from models/controlnet. "
                               "Its hint is computed without any model; set detail_scale on the sampler to use it. 'none' = off."}),
                "clip_skip": ("INT", {
                    "default": 1, "min": 1, "max": 12,
                    "tooltip": "CLIP layer the prompts are read from: 1 = the last layer (SD1.5's default), 2 = the penultimate "
                               "one (ComfyUI's CLIP Set Last Layer -2; what many anime-trained checkpoints expect)."}),
            },
        }

    def load(self, checkpoint: str, depth_controlnet: str, pose_controlnet: str, vae: str = NONE,
             precision: str = "auto", device: str = "auto", cpu_fallback: bool = True,
             detail_controlnet: str = NONE, clip_skip: int = 1) -> Tuple[Any]:
        from ..zrealism_core.engine import load_pipeline

        base = _resolve("checkpoints", checkpoint, "base")
        depth = _resolve("controlnet", depth_controlnet, "depth")
        pose = _resolve("controlnet", pose_controlnet, "pose")
        vae_path = None if vae in (NONE, "", None) else _resolve("vae", vae, "vae")
        detail = None if detail_controlnet in (NONE, "", None) else _resolve("controlnet", detail_controlnet, "detail")
        dev, dtype = bridge.engine_device_dtype(device, precision)
        # Inside ComfyUI its node cache keeps this output while the graph needs it; a second cache of ours would
        # only stop "Unload models" / POST /free from releasing the memory. Detectors live on the pipeline.
        inside = bridge.in_comfyui()
        pipe = load_pipeline(
            base, depth, pose, vae=vae_path, device=dev, dtype=dtype,
            fallback=bool(cpu_fallback), annotator_dirs=bridge.annotator_dirs(), detail_controlnet=detail,
            cache=not inside, cancel=bridge.cancel_check(),
            embedding_dirs=bridge.embedding_dirs(), clip_skip=int(clip_skip),
        )
        if inside:
            pipe.extras["detectors"] = bridge.detector_store()
            trim_when_freed(pipe)  # when ComfyUI drops this output, the freed heap goes back to the OS
        return (pipe,)


NODE_CLASS_MAPPINGS = {"ZRealism_ModelLoader": ZRealism_ModelLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"ZRealism_ModelLoader": "Z-Realism Model Loader (SD1.5 + depth + OpenPose)"}
