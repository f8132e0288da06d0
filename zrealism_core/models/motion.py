"""Load AnimateDiff motion models, motion LoRAs and SparseCtrl models from local files, offline.

Motion modules (SD1.5):
- a single file as downloaded from huggingface.co/guoyww/animatediff (mm_sd_v15.ckpt,
  mm_sd_v15_v2.ckpt, v3_sd15_mm.ckpt, or .safetensors conversions) - the files that ComfyUI
  AnimateDiff-Evolved users keep in models/animatediff_models;
- or a diffusers folder (config.json + diffusion_pytorch_model.safetensors), e.g.
  guoyww/animatediff-motion-adapter-v1-5-2; a single file with diffusers keys also works.

Why not `MotionAdapter.from_single_file`: offline it needs a config folder for each adapter
version (v1: 24 frames, no mid block; v2: 32 frames, mid block; v3: 32 frames, no mid block),
and it would otherwise try to reach the Hub. The configuration is fully determined by the tensor
shapes, so we infer it from the file and load the weights into a MotionAdapter built on the meta
device (no random init, no second copy). The key renaming is diffusers' own
`convert_animatediff_checkpoint_to_diffusers`.

Motion LoRAs (v2_lora_ZoomIn.ckpt etc., models/animatediff_motion_lora) need `peft`.
Files are read with safetensors, or torch.load(weights_only=True): nothing is ever unpickled.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..errors import InputError, ModelFileError, ZRealismError

log = logging.getLogger("zrealism")

PathLike = Union[str, Path]

MOTION_FOLDER = "animatediff_models"
MOTION_LORA_FOLDER = "animatediff_motion_lora"
SPARSECTRL_FOLDER = "controlnet"  # AnimateDiff-Evolved loads SparseCtrl models from models/controlnet
DOWNLOAD_HINT = "huggingface.co/guoyww/animatediff"
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def _where(folder: str) -> str:
    return (
        f"ComfyUI looks for these in models/{folder} (the folder AnimateDiff-Evolved also uses); "
        f"the CLI in --models DIR/{folder}. Download from {DOWNLOAD_HINT}."
    )


@dataclass
class MotionLora:
    """A motion LoRA ready to apply: diffusers-format state dict + strength."""

    name: str
    state_dict: Dict[str, Any]
    strength: float = 1.0


@dataclass
class MotionModel:
    """What the ZREALISM_MOTION node type carries: a motion adapter, optional LoRAs and SparseCtrl."""

    adapter: Any
    path: Optional[str] = None
    loras: List[MotionLora] = field(default_factory=list)
    sparsectrl: Any = None

    @property
    def max_frames(self) -> int:
        """Frames the adapter handles in one window (longer clips use FreeNoise windows)."""
        return int(self.adapter.config.motion_max_seq_length)


# ------------------------------------------------------------------ file reading

def read_state_dict(path: PathLike, *, what: str = "model", folder: str = MOTION_FOLDER) -> Dict[str, Any]:
    """Tensors of a .safetensors/.ckpt/.pt/.pth/.bin file (never unpickling arbitrary objects)."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"{what} file not found: {p}. {_where(folder)}")
    if p.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelFileError(f"{what} {p.name} is not a weights file ({', '.join(WEIGHT_SUFFIXES)}). {_where(folder)}")
    try:
        if p.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(p), device="cpu")
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code objects, truncated download...
        raise ModelFileError(
            f"{what} {p} could not be read ({type(exc).__name__}: {exc}). It may be truncated or not a "
            f"PyTorch/safetensors weights file; download it again. {_where(folder)}"
        ) from exc
    # some .ckpt files wrap the tensors
    for key in ("state_dict", "module", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd:
        raise ModelFileError(f"{what} {p} holds no tensors. {_where(folder)}")
    return {k: v for k, v in sd.items() if hasattr(v, "shape")}


# ------------------------------------------------------------------ motion adapter

def _strip_prefix(sd: Dict[str, Any]) -> Dict[str, Any]:
    # some conversions prefix the keys (e.g. "motion_module." or "model.diffusion_model.")
    out = {}
    for k, v in sd.items():
        i = k.find("down_blocks.") if "down_blocks." in k else k.find("up_blocks.") if "up_blocks." in k else k.find("mid_block.")
        out[k[i:] if i > 0 else k] = v
    return out


def _int_set(keys: Sequence[str], pattern: str) -> List[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys for m in [rx.match(k)] if m})


def infer_motion_config(sd: Dict[str, Any]) -> Dict[str, Any]:
    """MotionAdapter config from diffusers-layout motion tensors (see the module docstring)."""
    keys = list(sd)
    blocks = _int_set(keys, r"down_blocks\.(\d+)\.motion_modules\.")
    if not blocks:
        raise ValueError("no down_blocks.*.motion_modules tensors")
    channels = [int(sd[f"down_blocks.{b}.motion_modules.0.proj_in.weight"].shape[0]) for b in blocks]
    layers = len(_int_set(keys, r"down_blocks\.0\.motion_modules\.(\d+)\."))
    t_layers = len(_int_set(keys, r"down_blocks\.0\.motion_modules\.0\.transformer_blocks\.(\d+)\."))
    mid = [k for k in keys if k.startswith("mid_block.motion_modules.")]
    config: Dict[str, Any] = dict(
        block_out_channels=tuple(channels),
        motion_layers_per_block=layers,
        motion_transformer_layers_per_block=t_layers,
        use_motion_mid_block=bool(mid),
        # not recoverable from shapes; 8 heads in every SD1.5 AnimateDiff release
        motion_num_attention_heads=8,
        motion_norm_num_groups=32,
        motion_max_seq_length=32,
    )
    if mid:
        config["motion_mid_block_layers_per_block"] = len(_int_set(keys, r"mid_block\.motion_modules\.(\d+)\."))
        config["motion_transformer_layers_per_mid_block"] = len(
            _int_set(keys, r"mid_block\.motion_modules\.0\.transformer_blocks\.(\d+)\.")
        )
    if "conv_in.weight" in sd:  # PIA-style adapters replace conv_in
        config["conv_in_channels"] = int(sd["conv_in.weight"].shape[1])
    return config


def _groups_for(channels: Sequence[int], groups: int) -> int:
    # GroupNorm needs channels divisible by groups (tiny adapters use few channels)
    while groups > 1 and any(c % groups for c in channels):
        groups //= 2
    return groups


def _pe_length(raw: Dict[str, Any]) -> Optional[int]:
    for k, v in raw.items():
        if k.endswith("pos_encoder.pe") or k.endswith("pos_embed.pe"):
            return int(v.shape[1])
    return None


def _adapter_from_state_dict(raw: Dict[str, Any], p: Path, dtype: Any = None) -> Any:
    import torch
    from diffusers import MotionAdapter
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    raw = _strip_prefix(raw)
    if any(k.startswith("controlnet_") for k in raw) or "controlnet_cond_embedding.weight" in raw:
        raise ModelFileError(
            f"{p.name} is a SparseCtrl model, not a motion module; connect it as the SparseCtrl model "
            f"(models/{SPARSECTRL_FOLDER}) and pick a motion module such as mm_sd_v15_v2.ckpt here. {_where(MOTION_FOLDER)}"
        )
    if not any(".motion_modules." in k for k in raw):
        hint = ""
        if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in raw):
            hint = " It looks like a Stable Diffusion checkpoint; that goes into models/checkpoints."
        elif any("lora" in k for k in raw):
            hint = f" It looks like a LoRA; motion LoRAs go into models/{MOTION_LORA_FOLDER}."
        raise ModelFileError(f"{p} holds no AnimateDiff motion-module tensors.{hint} {_where(MOTION_FOLDER)}")
    if any(".lora" in k or "_lora." in k for k in raw):
        raise ModelFileError(f"{p.name} is a motion LoRA, not a motion module; put it into models/{MOTION_LORA_FOLDER}.")
    pe_len = _pe_length(raw)
    sd = convert_animatediff_checkpoint_to_diffusers(raw)  # original -> diffusers keys; drops pos_encoder.pe
    sd = {k: v for k, v in sd.items() if not k.endswith("pos_embed.pe")}  # recomputed below
    try:
        config = infer_motion_config(sd)
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{p} does not have the layout of an AnimateDiff motion module ({exc}). {_where(MOTION_FOLDER)}") from exc
    if len(config["block_out_channels"]) != 4 and config["block_out_channels"][0] == 320:
        raise ModelFileError(f"{p.name} is not an SD1.5 motion module (SDXL/other); use an SD1.5 one such as mm_sd_v15_v2.ckpt.")
    if pe_len:
        config["motion_max_seq_length"] = pe_len
    config["motion_norm_num_groups"] = _groups_for(config["block_out_channels"], 32)
    with torch.device("meta"):  # no random init: the file's tensors are assigned below
        adapter = MotionAdapter(**config)
    target = dtype or next(iter(sd.values())).dtype
    if not getattr(target, "is_floating_point", True):
        target = torch.float32
    sd = {k: v.to(target) for k, v in sd.items()}
    result = adapter.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.endswith("pos_embed.pe")]
    if missing or result.unexpected_keys:
        raise ModelFileError(
            f"{p.name} does not match an AnimateDiff motion module layout (missing {missing[:3]}, "
            f"unexpected {result.unexpected_keys[:3]}). {_where(MOTION_FOLDER)}"
        )
    # the sinusoidal position tables are not weights: compute them on the CPU
    for name, module in adapter.named_modules():
        if isinstance(module, SinusoidalPositionalEmbedding) and module.pe.is_meta:
            embed_dim = int(module.pe.shape[-1])
            fresh = SinusoidalPositionalEmbedding(embed_dim, config["motion_max_seq_length"])
            module.register_buffer("pe", fresh.pe.to(target))
    leftover = [n for n, t in list(adapter.named_parameters()) + list(adapter.named_buffers()) if t.is_meta]
    if leftover:
        raise ModelFileError(f"{p.name} lacks tensors {leftover[:3]}; it is incomplete. Download it again from {DOWNLOAD_HINT}.")
    return adapter.train(False)


def load_motion_adapter(path: PathLike, *, dtype: Any = None) -> Any:
    """A diffusers MotionAdapter (on the CPU) from a single file or a diffusers folder.

    `dtype` (torch dtype) converts the weights; by default the file's own precision is kept and
    animate() moves the adapter to the pipeline's device and dtype.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelFileError(
                f"motion model folder {p} has no config.json; use a diffusers MotionAdapter folder or a single "
                f"file such as mm_sd_v15_v2.ckpt. {_where(MOTION_FOLDER)}"
            )
        from diffusers import MotionAdapter

        try:
            kwargs = {"torch_dtype": dtype} if dtype is not None else {}
            return MotionAdapter.from_pretrained(str(p), local_files_only=True, **kwargs).train(False)
        except (OSError, ValueError, EnvironmentError) as exc:
            raise ModelFileError(f"motion model folder {p} could not be loaded: {exc}. {_where(MOTION_FOLDER)}") from exc
    raw = read_state_dict(p, what="motion model", folder=MOTION_FOLDER)
    return _adapter_from_state_dict(raw, p, dtype)


def as_motion_model(value: Any) -> MotionModel:
    """MotionModel from a path, a MotionAdapter, or a MotionModel."""
    if isinstance(value, MotionModel):
        return value
    if value is None:
        raise InputError(f"motion_adapter is missing: pass a motion module file or folder (e.g. mm_sd_v15_v2.ckpt). {_where(MOTION_FOLDER)}")
    if isinstance(value, (str, Path)):
        return MotionModel(adapter=load_motion_adapter(value), path=str(value))
    if hasattr(value, "config") and hasattr(value.config, "motion_max_seq_length"):
        return MotionModel(adapter=value)
    raise InputError(f"motion_adapter must be a path, a diffusers MotionAdapter or a MotionModel, not {type(value).__name__}.")


# ------------------------------------------------------------------ motion LoRA

def _lora_to_diffusers(raw: Dict[str, Any]) -> Dict[str, Any]:
    """guoyww motion-LoRA keys (`...temporal_transformer...attention_blocks.0.processor.to_q_lora.down.weight`)
    -> diffusers LoRA keys (`unet....attn1.to_q.lora.down.weight`). diffusers/peft keys pass through."""
    out: Dict[str, Any] = {}
    for key, value in raw.items():
        k = key
        if k.startswith("unet."):
            out[k] = value
            continue
        k = _strip_prefix({k: None}).popitem()[0]
        k = k.replace(".temporal_transformer.", ".")
        k = k.replace(".attention_blocks.0.", ".attn1.").replace(".attention_blocks.1.", ".attn2.")
        for proj in ("to_q", "to_k", "to_v"):
            k = k.replace(f".processor.{proj}_lora.", f".{proj}.lora.")
        k = k.replace(".processor.to_out_lora.", ".to_out.0.lora.")
        out["unet." + k] = value
    return out


def peft_available() -> bool:
    try:
        import peft  # noqa: F401
    except ImportError:
        return False
    return True


def require_peft() -> None:
    if not peft_available():
        raise ZRealismError("Motion LoRAs need the 'peft' package: install it with `pip install peft` and restart.")


def load_motion_lora(path: PathLike, strength: float = 1.0, name: Optional[str] = None) -> MotionLora:
    """A motion LoRA file (guoyww layout or diffusers keys) as a MotionLora."""
    require_peft()
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in WEIGHT_SUFFIXES)
        if not files:
            raise ModelFileError(f"motion LoRA folder {p} holds no weights file. {_where(MOTION_LORA_FOLDER)}")
        p = files[0]
    raw = read_state_dict(p, what="motion LoRA", folder=MOTION_LORA_FOLDER)
    if not any("motion_modules" in k for k in raw):
        raise ModelFileError(
            f"{p.name} is not a motion LoRA (no motion_modules tensors); image LoRAs do not apply to the motion "
            f"model. {_where(MOTION_LORA_FOLDER)}"
        )
    if not any("lora" in k.lower() for k in raw):
        raise ModelFileError(f"{p.name} holds motion modules but no LoRA tensors; is it a motion model? Put it into models/{MOTION_FOLDER}.")
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise InputError(f"motion LoRA strength must be a number, got {strength!r}.") from None
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name or p.stem) or "motion_lora"
    return MotionLora(name=safe, state_dict=_lora_to_diffusers(raw), strength=value)


# ------------------------------------------------------------------ SparseCtrl

def load_sparsectrl(path: PathLike, *, dtype: Any = None) -> Any:
    """An RGB SparseCtrl model (diffusers SparseControlNetModel folder, e.g. guoyww/animatediff-sparsectrl-rgb)."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"SparseCtrl model not found: {p}. Download guoyww/animatediff-sparsectrl-rgb (diffusers folder).")
    if not p.is_dir() or not (p / "config.json").is_file():
        raise ModelFileError(
            f"SparseCtrl model {p} must be a diffusers folder with config.json (e.g. guoyww/animatediff-sparsectrl-rgb); "
            "single .ckpt files are not supported offline because their configuration cannot be read from the file."
        )
    from diffusers import SparseControlNetModel

    kwargs = {"torch_dtype": dtype} if dtype is not None else {}
    try:
        model = SparseControlNetModel.from_pretrained(str(p), local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"SparseCtrl model folder {p} could not be loaded: {exc}") from exc
    if int(model.config.conditioning_channels) != 4:
        raise ModelFileError(
            f"{p.name} is a SparseCtrl model for {model.config.conditioning_channels}-channel hints (scribble?); "
            "the keyframe option needs the RGB SparseCtrl (conditioning_channels 4)."
        )
    return model.train(False)
