"""The shipped workflows, as compact descriptions (see graph.py): `workflows()` lists them in the order
build.py writes them."""
from __future__ import annotations

from typing import Dict, List, Tuple

from workflows.graph import Model, Node, Source, Workflow


# Model files the graphs select by default: widget value = `name`, so the editor's missing-models
# dialog can name the file, its folder and its download (the editor only offers .safetensors
# downloads itself; the motion module is a .ckpt, which our loader reads without unpickling).
BASE = Model("v1-5-pruned-emaonly.safetensors",
             "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors",
             "checkpoints")
DEPTH = Model("control_v11f1p_sd15_depth_fp16.safetensors",
              "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11f1p_sd15_depth_fp16.safetensors",
              "controlnet")
POSE = Model("control_v11p_sd15_openpose_fp16.safetensors",
             "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11p_sd15_openpose_fp16.safetensors",
             "controlnet")
LINEART = Model("control_v11p_sd15_lineart_fp16.safetensors",
                "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11p_sd15_lineart_fp16.safetensors",
                "controlnet")
MOTION = Model("mm_sd_v15_v2.ckpt", "https://huggingface.co/guoyww/animatediff/resolve/main/mm_sd_v15_v2.ckpt",
               "animatediff_models")

SUBJECT = "a young woman in a pink dress"
NATIVE_LORA = "realism_lora_sd15.safetensors"  # a placeholder the user replaces (the native graph's LoRA is off: strength 0)
NOTE_MODELS = """Z-Realism: drawing -> photo (SD1.5 img2img + depth and OpenPose ControlNets)

Models (ComfyUI/models/...):
- checkpoints/v1-5-pruned-emaonly.safetensors (or any SD1.5 fine-tune, or a diffusers folder in models/diffusers)
- controlnet/control_v11f1p_sd15_depth_fp16.safetensors
- controlnet/control_v11p_sd15_openpose_fp16.safetensors
{extra}- zrealism_annotators/: Depth Anything V2 Small (folder Depth-Anything-V2-Small-hf) and the OpenPose file \
body_pose_model.pth (OpenPose body; hands and face are not drawn) (or install comfyui_controlnet_aux, whose ckpts are found too)

Use: load a character drawing (a flat background is removed; PNG transparency is used), set the subject on \
Heuristic Analyzer, queue. The analyzer's params replace the sampler's steps/cfg/denoise/scales; disconnect \
params to set them by hand. Fidelity Evaluator scores the result against the drawing (0..1, higher is better)."""


def _loader(node_id: int, pos: Tuple[float, float]) -> Node:
    return Node(node_id, "ZRealism_ModelLoader", pos, models=[BASE, DEPTH, POSE],
                widgets={"checkpoint": BASE.name, "depth_controlnet": DEPTH.name, "pose_controlnet": POSE.name})


def _still_core(image: Source, sampler_links: Dict[str, Source], x0: float = 0.0) -> List[Node]:
    """Prep -> analyze -> load -> sample -> evaluate + save, fed by `image` (ids 2-9)."""
    return [
        Node(2, "ZRealism_WhiteBackgroundPrep", (x0 + 380, 0), widgets={"long_side": 512},
             links={"image": image, "mask": (image[0], "MASK")}),
        Node(3, "ZRealism_HeuristicAnalyzer", (x0 + 760, 0), widgets={"subject": SUBJECT},
             links={"image": (2, "image"), "mask": (2, "mask")}),
        Node(4, "PreviewAny", (x0 + 760, 330), title="Analyzer report", links={"source": (3, "report")}, width=320),
        _loader(5, (x0 + 760, 520)),
        Node(6, "ZRealism_DualControlNetSampler", (x0 + 1140, 0), widgets={"seed": 42}, width=340,
             links={"pipe": (5, "pipe"), "image": (2, "image"), "mask": (2, "mask"), "params": (3, "params"),
                    "prompt": (3, "positive"), "negative": (3, "negative"), **sampler_links}),
        Node(7, "SaveImage", (x0 + 1540, 0), widgets={"filename_prefix": "ZRealism/still"},
             links={"images": (6, "image")}),
        Node(8, "ZRealism_FidelityEvaluator", (x0 + 1540, 420),  # the sampler's maps: control scores without re-detecting
             links={"source": (2, "image"), "result": (6, "image"), "mask": (2, "mask"),
                    "depth_map": (6, "depth_map"), "pose_map": (6, "pose_map")}),
        Node(9, "PreviewImage", (x0 + 1920, 420), title="Fidelity panel", links={"images": (8, "panel")}),
    ]


def workflows() -> List[Workflow]:
    still = Workflow("zrealism_still", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *_still_core((1, "IMAGE"), {}),
        Node(10, "Note", (0, 420), width=700, text=NOTE_MODELS.format(extra="")),
    ])
    custom = Workflow("zrealism_custom_maps", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        Node(11, "LoadImage", (0, 400), title="Depth map (white = near)", widgets={"image": "depth_map.png"}),
        Node(12, "LoadImage", (0, 760), title="OpenPose map", widgets={"image": "pose_map.png"}),
        *_still_core((1, "IMAGE"), {"depth_map": (11, "IMAGE"), "pose_map": (12, "IMAGE")}),
        Node(10, "Note", (380, 420), width=340, height=620, text=(
            "Custom maps: the depth and OpenPose maps come from you instead of the built-in detectors, e.g. from "
            "comfyui_controlnet_aux (Depth Anything / MiDaS, DWPose / OpenPose): replace the two Load Image nodes "
            "with those preprocessors, fed by the White Background Prep image. One map serves every image of a "
            "batch, or give one per image; maps are resized to the image.\n\n" + NOTE_MODELS.format(extra=""))),
    ])
    video = Workflow("zrealism_video", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *_still_core((1, "IMAGE"), {}),
        Node(10, "Note", (0, 420), width=700, height=330, text=NOTE_MODELS.format(
            extra="- animatediff_models/mm_sd_v15_v2.ckpt (AnimateDiff motion module; v3_sd15_mm.ckpt works too)\n")
            + "\n\nVideo: AnimateDiff Fuse animates the still (strength = how far frames may move from it), guided by "
              "the still's own depth and pose maps, colours locked to the still. Fidelity Evaluator (bottom) scores the "
              "frames against the drawing, plus temporal consistency."),
        Node(13, "ZRealism_MotionModelLoader", (760, 900), models=[MOTION], widgets={"motion_model": MOTION.name}),
        Node(14, "ZRealism_AnimateDiffFuse", (1140, 900), widgets={"seed": 42}, width=340,
             links={"pipe": (5, "pipe"), "motion": (13, "motion"), "still": (6, "image"),
                    "prompt": (3, "positive"), "negative": (3, "negative"), "depth_map": (6, "depth_map"),
                    "pose_map": (6, "pose_map"), "mask": (2, "mask"), "params": (3, "params")}),
        Node(15, "ZRealism_SaveVideo", (1540, 900), widgets={"filename_prefix": "ZRealism/clip"},
             links={"frames": (14, "frames"), "fps": (14, "fps")}),
        Node(16, "ZRealism_FidelityEvaluator", (1540, 1320), title="Fidelity Evaluator (clip)",
             links={"source": (2, "image"), "result": (14, "frames"), "mask": (2, "mask"),
                    "depth_map": (6, "depth_map"), "pose_map": (6, "pose_map")}),
        Node(17, "PreviewImage", (1920, 1320), title="Fidelity panel (clip)", links={"images": (16, "panel")}),
    ])
    detail_core = _still_core((1, "IMAGE"), {})
    for node in detail_core:
        if node.id == 5:  # the loader gets the optional detail net
            node.models = node.models + [LINEART]
            node.widgets["detail_controlnet"] = LINEART.name
        elif node.id == 6:  # the sampler uses it for the first 80% of the steps; auto = lineart from the file name
            node.widgets.update(detail_scale=0.55, detail_end=0.8, detail_hint="auto")
    detail = Workflow("zrealism_still_detail", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *detail_core,
        Node(10, "Note", (0, 420), width=700, height=380, text=NOTE_MODELS.format(
            extra=f"- controlnet/{LINEART.name} (the detail ControlNet; control_v11f1e_sd15_tile, "
                  "control_v11p_sd15s2_lineart_anime or control_v11p_sd15_canny work too)\n")
            + "\n\nDetail: a third ControlNet keeps the drawing's own line art. Its hint is computed without any model "
              "(detail_hint auto = from the file name: lineart -> the drawing's dark strokes as thin white lines; tile -> "
              "the image itself, keeps layout and colours; canny -> edges). The analyzer's params set detail_scale "
              "(0 for photos); detail_end 0.8 leaves the last steps free for photo texture. The evaluator reports "
              "control fidelity (edge_f, depth_corr, pose_pck) in its JSON."),
    ])
    native = Workflow("zrealism_still_native", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        Node(2, "ZRealism_WhiteBackgroundPrep", (380, 0), widgets={"long_side": 512},
             links={"image": (1, "IMAGE"), "mask": (1, "MASK")}),
        Node(3, "ZRealism_HeuristicAnalyzer", (760, 0), widgets={"subject": SUBJECT},
             links={"image": (2, "image"), "mask": (2, "mask")}),
        Node(4, "PreviewAny", (760, 420), title="Analyzer report", links={"source": (3, "report")}, width=320),
        Node(5, "ZRealism_ControlMaps", (380, 420), links={"image": (2, "image"), "mask": (2, "mask")}),
        # ComfyUI's own sampling chain: any LoRA, IPAdapter_plus, FreeU... plugs in here
        Node(20, "CheckpointLoaderSimple", (0, 760), models=[BASE], widgets={"ckpt_name": BASE.name}),
        Node(21, "LoraLoader", (380, 760), title="Load LoRA (your realism LoRA; strength 0 = off)",
             widgets={"lora_name": NATIVE_LORA, "strength_model": 0.0, "strength_clip": 0.0},
             links={"model": (20, "MODEL"), "clip": (20, "CLIP")}),
        Node(22, "CLIPTextEncode", (760, 760), title="Positive (from the analyzer)",
             links={"clip": (21, "CLIP"), "text": (3, "positive")}),
        Node(23, "CLIPTextEncode", (760, 980), title="Negative (from the analyzer)",
             links={"clip": (21, "CLIP"), "text": (3, "negative")}),
        Node(24, "ControlNetLoader", (1140, 760), models=[DEPTH], widgets={"control_net_name": DEPTH.name}),
        Node(25, "ControlNetLoader", (1140, 900), models=[POSE], widgets={"control_net_name": POSE.name}),
        Node(26, "ControlNetApplyAdvanced", (1520, 760), title="Apply depth ControlNet",
             links={"positive": (22, "CONDITIONING"), "negative": (23, "CONDITIONING"), "control_net": (24, "CONTROL_NET"),
                    "image": (5, "depth_map"), "strength": (3, "depth_scale"), "end_percent": (3, "control_end")}),
        Node(27, "ControlNetApplyAdvanced", (1900, 760), title="Apply OpenPose ControlNet",
             links={"positive": (26, "positive"), "negative": (26, "negative"), "control_net": (25, "CONTROL_NET"),
                    "image": (5, "pose_map"), "strength": (3, "pose_scale"), "end_percent": (3, "control_end")}),
        Node(28, "VAEEncode", (1140, 1060), links={"pixels": (2, "image"), "vae": (20, "VAE")}),
        Node(29, "KSampler", (2280, 760), widgets={"seed": 42, "sampler_name": "dpmpp_2m", "scheduler": "karras"},
             links={"model": (21, "MODEL"), "positive": (27, "positive"), "negative": (27, "negative"),
                    "latent_image": (28, "LATENT"), "steps": (3, "steps"), "cfg": (3, "cfg"), "denoise": (3, "denoise")}),
        Node(30, "VAEDecode", (2660, 760), links={"samples": (29, "LATENT"), "vae": (20, "VAE")}),
        Node(31, "SaveImage", (3040, 760), widgets={"filename_prefix": "ZRealism/native"}, links={"images": (30, "IMAGE")}),
        Node(32, "ZRealism_FidelityEvaluator", (3040, 1200),
             links={"source": (2, "image"), "result": (30, "IMAGE"), "mask": (2, "mask"),
                    "depth_map": (5, "depth_map"), "pose_map": (5, "pose_map")}),
        Node(33, "PreviewImage", (3420, 1200), title="Fidelity panel", links={"images": (32, "panel")}),
        Node(10, "Note", (0, 1200), width=700, height=330, text=(
            "Z-Realism around ComfyUI's own sampler: White Background Prep, Heuristic Analyzer (prompts, ControlNet "
            "strengths and end, steps, cfg, denoise), Z-Realism Control Maps (offline depth + OpenPose maps) and the "
            "Fidelity Evaluator, with core Load Checkpoint -> Load LoRA -> CLIP Text Encode -> Apply ControlNet x2 -> "
            "KSampler in between, so any LoRA, IPAdapter_plus or FreeU node plugs in as usual.\n\n"
            f"Load LoRA: put an SD1.5 realism LoRA in models/loras and select it (the graph names {NATIVE_LORA}); "
            "raise both strengths (0.6-0.8), or bypass the node.\n\n" + NOTE_MODELS.format(extra=""))),
    ])
    return [still, video, custom, detail, native]
