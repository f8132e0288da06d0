"""Which model files the pipeline needs, where ComfyUI keeps them, and where to get them.

One table serves the loaders' error messages, the CLI's model discovery (`--models DIR`, a folder
laid out like ComfyUI's `models/`) and its "missing models" message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .annotators import ANNOTATOR_FOLDER

WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


@dataclass(frozen=True)
class ModelRole:
    key: str  # ModelPaths attribute
    what: str
    folder: str  # ComfyUI models/ sub-folder
    get: str  # what to download, and from where (by hand)
    keywords: Tuple[str, ...] = ()  # file-name hints used to pick among several files
    needed_for: str = "still"  # "still" or "video"


# What each model role is, where ComfyUI keeps it, and what to get: used by the loaders' errors.
ROLES: Dict[str, Dict[str, str]] = {
    "base": {
        "what": "SD1.5 checkpoint",
        "where": "ComfyUI/models/checkpoints/ (a single file) or ComfyUI/models/diffusers/ (a diffusers folder)",
        "get": "an SD1.5 checkpoint such as v1-5-pruned-emaonly.safetensors "
        "(huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5) or an SD1.5 fine-tune (e.g. Realistic Vision)",
    },
    "depth": {
        "what": "depth ControlNet (SD1.5)",
        "where": "ComfyUI/models/controlnet/",
        "get": "control_v11f1p_sd15_depth (huggingface.co/lllyasviel/ControlNet-v1-1, or the fp16 "
        "control_v11f1p_sd15_depth_fp16.safetensors from huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors)",
    },
    "pose": {
        "what": "OpenPose ControlNet (SD1.5)",
        "where": "ComfyUI/models/controlnet/",
        "get": "control_v11p_sd15_openpose (huggingface.co/lllyasviel/ControlNet-v1-1, or the fp16 "
        "control_v11p_sd15_openpose_fp16.safetensors from huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors)",
    },
    "detail": {
        "what": "detail ControlNet (SD1.5)",
        "where": "ComfyUI/models/controlnet/",
        "get": "control_v11f1e_sd15_tile, control_v11p_sd15_lineart, control_v11p_sd15s2_lineart_anime or "
        "control_v11p_sd15_canny (huggingface.co/lllyasviel/ControlNet-v1-1, or the fp16 .safetensors from "
        "huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors)",
    },
    "vae": {
        "what": "SD1.5 VAE",
        "where": "ComfyUI/models/vae/",
        "get": "vae-ft-mse-840000-ema-pruned.safetensors (huggingface.co/stabilityai/sd-vae-ft-mse-original), "
        "or leave the VAE empty to use the checkpoint's own",
    },
    "motion": {
        "what": "AnimateDiff SD1.5 motion module",
        "where": "ComfyUI/models/animatediff_models/",
        "get": "mm_sd_v15_v2.ckpt (huggingface.co/guoyww/animatediff)",
    },
}

CATALOG: Tuple[ModelRole, ...] = (
    ModelRole("checkpoint", ROLES["base"]["what"], "checkpoints", ROLES["base"]["get"],
              ("realistic", "photo", "v1-5", "sd15", "sd-v1")),
    ModelRole("depth_controlnet", ROLES["depth"]["what"], "controlnet", ROLES["depth"]["get"], ("depth",)),
    ModelRole("pose_controlnet", ROLES["pose"]["what"], "controlnet", ROLES["pose"]["get"], ("openpose", "pose")),
    ModelRole("motion_adapter", ROLES["motion"]["what"], "animatediff_models", ROLES["motion"]["get"],
              ("v15", "sd15", "mm_"), needed_for="video"),
)


@dataclass
class ModelPaths:
    """Resolved model locations for one run. `vae` is optional; `annotator_dirs` are searched in order."""

    checkpoint: Optional[Path] = None
    depth_controlnet: Optional[Path] = None
    pose_controlnet: Optional[Path] = None
    vae: Optional[Path] = None
    motion_adapter: Optional[Path] = None
    detail_controlnet: Optional[Path] = None  # optional third net: only an explicit path turns it on
    annotator_dirs: List[Path] = field(default_factory=list)

    def missing(self, video: bool = False) -> List[ModelRole]:
        return [r for r in CATALOG if (video or r.needed_for == "still") and getattr(self, r.key) is None]


def _candidates(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES:
            found.append(p)
        elif p.is_dir() and ((p / "model_index.json").is_file() or (p / "config.json").is_file()):
            found.append(p)
    return found


def _pick(cands: Sequence[Path], keywords: Sequence[str], exclude: Sequence[str] = ()) -> Optional[Path]:
    def name(p: Path) -> str:
        return p.name.lower()

    pool = [p for p in cands if not any(x in name(p) for x in exclude)]
    for kw in keywords:
        hits = [p for p in pool if kw in name(p)]
        if hits:
            return hits[0]
    return pool[0] if pool else None


def discover(models_dir: Path) -> ModelPaths:
    """Find the pipeline's models in a ComfyUI-style `models/` folder (file-name hints pick among several)."""
    models_dir = Path(models_dir)
    paths = ModelPaths()
    ckpts = _candidates(models_dir / "checkpoints") + [
        p for p in _candidates(models_dir / "diffusers") if (p / "model_index.json").is_file()
    ]
    ckpts = [p for p in ckpts if p.is_file() or (p / "model_index.json").is_file()]
    paths.checkpoint = _pick(ckpts, CATALOG[0].keywords, exclude=("xl", "inpaint"))
    nets = _candidates(models_dir / "controlnet")
    paths.depth_controlnet = _pick([p for p in nets if "depth" in p.name.lower()], ("depth",))
    paths.pose_controlnet = _pick([p for p in nets if "pose" in p.name.lower()], ("openpose", "pose"))
    motions = [p for p in _candidates(models_dir / "animatediff_models") if p.is_file() or (p / "config.json").is_file()]
    paths.motion_adapter = _pick(motions, CATALOG[3].keywords, exclude=("xl", "sparse"))
    annot = [models_dir / ANNOTATOR_FOLDER]
    aux = models_dir.parent / "custom_nodes" / "comfyui_controlnet_aux" / "ckpts"
    paths.annotator_dirs = [p for p in annot + [aux] if p.is_dir()]
    return paths


def missing_models_message(roles: Sequence[ModelRole], models_dir: Optional[Path] = None) -> str:
    """One message listing every needed file, where it goes, and where to get it."""
    base = Path(models_dir) if models_dir else Path("ComfyUI/models")
    lines = ["These model files are needed and were not found:"]
    for r in roles:
        lines.append(f"  - {r.what}: put it in {base / r.folder}/ ; get {r.get}")
    lines.append(
        "Point --models at a ComfyUI models/ folder that has them, or pass the files explicitly "
        "(--checkpoint, --depth-controlnet, --pose-controlnet, --motion-adapter). "
        "To check the install without any download, run `zrealism selftest`."
    )
    return "\n".join(lines)


def as_dict(paths: ModelPaths) -> Dict[str, Optional[str]]:
    return {k: (str(v) if v is not None else None) for k, v in paths.__dict__.items() if k != "annotator_dirs"}
