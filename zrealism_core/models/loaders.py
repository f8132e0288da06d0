"""Loading SD1.5 + two ControlNets (+ optional VAE) from the files ComfyUI users already have, offline.

Accepted inputs
- base: an SD1.5 single file (.safetensors; .ckpt/.pt only through torch.load(weights_only=True))
  in the original (LDM) layout, or a diffusers folder (model_index.json, unet/, vae/, ...).
  Single files are read with diffusers `from_single_file(config=<config folder>, local_files_only=True)`;
  the default config folder is the shipped real SD1.5 one (zrealism_core/data/sd15), `config=` overrides
  it (tiny test models, fine-tunes with other shapes).
- ControlNets: single files in the original layout (`control_model.input_hint_block...` or the same keys
  without the prefix) or the diffusers layout, or diffusers folders (config.json + weights). A single file
  gets its config from the base UNet's config plus the conditioning-embedding widths read from the file.
- VAE (optional): the same rules (original or diffusers layout, or folder).

Every check happens before the heavy load, and each failure is a ModelFileError that names the file,
says what is wrong, where ComfyUI looks for such files, and what to download. Nothing is fetched from
the network unless `allow_download=True` (standalone use only) and the argument is a Hub id.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..data import SD15_CONFIG_DIR, TOKENIZER_DIR
from ..errors import ModelFileError
from .catalog import ROLES
from ..runtime.guidance import skipping_multi_controlnet
from .files import SAFE_SUFFIXES, TORCH_SUFFIXES, load_torch_file, read_shapes, read_weights  # noqa: F401  (also public here)

log = logging.getLogger("zrealism")

PathLike = Union[str, Path]


# what each role is, where ComfyUI keeps it, what to download
def _hint(role: str) -> str:
    r = ROLES[role]
    return f"Put the {r['what']} in {r['where']}; get {r['get']}."


# ------------------------------------------------------------------ reading files safely

@dataclass
class FileInfo:
    """What a weights file holds, read without building any model."""

    path: Path
    shapes: Dict[str, Tuple[int, ...]]
    kind: str = "unknown"     # sd15 | sd2 | sdxl | inpaint | controlnet | controlnet_sdxl | vae | unknown
    layout: str = "ldm"       # ldm | diffusers
    cross_attention_dim: Optional[int] = None
    notes: List[str] = field(default_factory=list)


def _find(shapes: Mapping[str, Tuple[int, ...]], suffix: str) -> Optional[Tuple[int, ...]]:
    for k, v in shapes.items():
        if k.endswith(suffix):
            return v
    return None


def classify(path: PathLike, shapes: Optional[Mapping[str, Tuple[int, ...]]] = None) -> FileInfo:
    """Recognise what a single weights file is from its key names and shapes."""
    p = Path(path)
    shapes = dict(shapes if shapes is not None else read_shapes(p))
    info = FileInfo(p, shapes)
    keys = shapes.keys()
    if not shapes:
        info.notes.append("the file holds no tensors")
        return info
    attn = _find(shapes, "attn2.to_k.weight")
    info.cross_attention_dim = attn[-1] if attn else None
    has = lambda *subs: any(any(s in k for s in subs) for k in keys)  # noqa: E731
    starts = lambda *pre: any(k.startswith(pre) for k in keys)  # noqa: E731

    is_cn_ldm = has("input_hint_block.", "zero_convs.") and not starts("model.diffusion_model.")
    is_cn_diff = has("controlnet_cond_embedding.", "controlnet_down_blocks.")
    if is_cn_ldm or is_cn_diff:
        info.layout = "diffusers" if is_cn_diff else "ldm"
        sdxl = has("add_embedding.linear_1", "label_emb.") or (info.cross_attention_dim or 0) >= 1280
        info.kind = "controlnet_sdxl" if sdxl else "controlnet"
        return info
    if starts("conditioner.embedders.") or has("model.diffusion_model.label_emb.", "add_embedding.linear_1"):
        info.kind = "sdxl"
        return info
    if starts("model.diffusion_model."):
        conv_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
        if info.cross_attention_dim == 2048:
            info.kind = "sdxl"
        elif starts("cond_stage_model.model.") or info.cross_attention_dim == 1024:
            info.kind = "sd2"
        elif conv_in is not None and len(conv_in) == 4 and conv_in[1] != 4:
            info.kind = "inpaint"
        else:
            info.kind = "sd15"
        return info
    if starts("down_blocks.", "up_blocks.", "mid_block.", "conv_in.") and has("time_embedding."):
        info.kind, info.layout = "unet", "diffusers"
        return info
    vae_ldm = has("encoder.down.", "decoder.up.")
    vae_diff = has("encoder.down_blocks.", "decoder.up_blocks.")
    if (vae_ldm or vae_diff) and not starts("model.diffusion_model."):
        info.kind, info.layout = "vae", ("diffusers" if vae_diff else "ldm")
        return info
    if has("lora_", ".lora.", "lora_unet", "lora_te", "hada_w1_a", "lokr_w1"):
        info.notes.append("this looks like a LoRA")
    return info


def _missing(path: Optional[PathLike], role: str, extra: str = "") -> ModelFileError:
    label = ROLES[role]["what"]
    if not path:
        return ModelFileError(f"No {label} was given. {_hint(role)}")
    return ModelFileError(f"{label} not found: {path}{extra}. {_hint(role)}")


def _check_exists(path: Optional[PathLike], role: str) -> Path:
    if path is None or str(path).strip() == "":
        raise _missing(None, role)
    p = Path(path).expanduser()
    if not p.exists():
        raise _missing(p, role)
    if p.is_file() and p.stat().st_size == 0:
        raise ModelFileError(f"{ROLES[role]['what']} {p} is an empty file (failed download?). {_hint(role)}")
    return p


def check_base(path: PathLike) -> FileInfo:
    """Validate a base checkpoint file/folder; returns what it is or raises a ModelFileError that says why not."""
    p = _check_exists(path, "base")
    if p.is_dir():
        return _check_base_folder(p)
    info = classify(p)
    name = p.name
    if info.kind == "sd15":
        return info
    if info.kind == "unknown" and "this looks like a LoRA" in info.notes:
        raise ModelFileError(
            f"{name} is a LoRA, not a checkpoint: put it in ComfyUI/models/loras/ and add it with the Z-Realism LoRA "
            f"Loader node (CLI: --lora FILE[:STRENGTH]) after choosing an SD1.5 checkpoint here. {_hint('base')}"
        )
    why = {
        "sdxl": "is an SDXL checkpoint (it has SDXL's second text encoder / size embeddings); Z-Realism needs SD1.5",
        "sd2": "is an SD2.x checkpoint (OpenCLIP text encoder, cross-attention 1024); Z-Realism needs SD1.5",
        "inpaint": "is an inpainting checkpoint (9 input channels); use a normal SD1.5 checkpoint",
        "controlnet": "is a ControlNet, not a base checkpoint: put it in ComfyUI/models/controlnet/ and choose it as the depth or pose ControlNet",
        "controlnet_sdxl": "is an SDXL ControlNet, not a base checkpoint",
        "vae": "is a VAE, not a full checkpoint: put it in ComfyUI/models/vae/",
        "unet": "holds only a UNet; Z-Realism needs a full SD1.5 checkpoint (UNet + VAE + text encoder)",
    }.get(info.kind, "is not a Stable Diffusion checkpoint Z-Realism recognises" + (f" ({'; '.join(info.notes)})" if info.notes else ""))
    raise ModelFileError(f"{name} {why}. {_hint('base')}")


def _check_base_folder(p: Path) -> FileInfo:
    index = p / "model_index.json"
    if not index.is_file():
        raise ModelFileError(
            f"{p} is a folder but not a diffusers model (no model_index.json). {_hint('base')}"
        )
    unet_cfg = _read_json(p / "unet" / "config.json", "base")
    if (p / "text_encoder_2").exists() or unet_cfg.get("addition_embed_type") == "text_time" or unet_cfg.get("cross_attention_dim") == 2048:
        raise ModelFileError(f"{p} is an SDXL diffusers model; Z-Realism needs SD1.5. {_hint('base')}")
    if unet_cfg.get("cross_attention_dim") == 1024:
        raise ModelFileError(f"{p} is an SD2.x diffusers model (cross-attention 1024); Z-Realism needs SD1.5. {_hint('base')}")
    info = FileInfo(p, {}, kind="sd15", layout="diffusers", cross_attention_dim=unet_cfg.get("cross_attention_dim"))
    return info


def _read_json(path: Path, role: str) -> Dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(f"{path} is missing; the model folder is incomplete. {_hint(role)}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path} is not valid JSON ({exc}); the model folder is damaged.") from exc


def check_controlnet(path: PathLike, role: str, unet_config: Mapping[str, Any]) -> FileInfo:
    """Validate a ControlNet file/folder against the base UNet (family and widths)."""
    p = _check_exists(path, role)
    label = ROLES[role]["what"]
    if p.is_dir():
        cfg = _read_json(p / "config.json", role)
        info = FileInfo(p, {}, kind="controlnet", layout="folder", cross_attention_dim=cfg.get("cross_attention_dim"))
        if cfg.get("addition_embed_type") == "text_time":
            info.kind = "controlnet_sdxl"
    else:
        info = classify(p)
    if info.kind == "controlnet_sdxl":
        raise ModelFileError(f"{p.name} is an SDXL ControlNet; the {label} must be an SD1.5 ControlNet. {_hint(role)}")
    if info.kind in ("sd15", "sd2", "sdxl", "inpaint"):
        raise ModelFileError(f"{p.name} is a full {info.kind.upper()} checkpoint, not a ControlNet. {_hint(role)}")
    if info.kind != "controlnet":
        extra = f" ({'; '.join(info.notes)})" if info.notes else ""
        raise ModelFileError(f"{p.name} is not a ControlNet Z-Realism recognises{extra} (T2I adapters and Control-LoRAs are not supported). {_hint(role)}")
    want = unet_config.get("cross_attention_dim")
    if info.cross_attention_dim and want and info.cross_attention_dim != want:
        fam = {768: "SD1.5", 1024: "SD2.x", 2048: "SDXL"}.get(info.cross_attention_dim, f"width {info.cross_attention_dim}")
        raise ModelFileError(
            f"{p.name} is a ControlNet for another model family ({fam}: cross-attention {info.cross_attention_dim}, "
            f"the base model has {want}). {_hint(role)}"
        )
    lowered = p.name.lower()
    other = {"depth": "openpose", "pose": "depth"}.get(role, "")
    if other and other in lowered:
        log.warning("zrealism: the %s is %s - its name suggests a %s ControlNet; check the two are not swapped.", label, p.name, other)
    return info


def check_vae(path: PathLike) -> FileInfo:
    p = _check_exists(path, "vae")
    if p.is_dir():
        _read_json(p / "config.json", "vae")
        return FileInfo(p, {}, kind="vae", layout="folder")
    info = classify(p)
    if info.kind == "sd15":
        info.notes.append("full checkpoint: its VAE part is used")
        return info
    if info.kind != "vae":
        raise ModelFileError(f"{p.name} is not a VAE (it looks like: {info.kind}). {_hint('vae')}")
    return info


# ------------------------------------------------------------------ configs

def config_folder(config: Optional[PathLike]) -> Path:
    """The diffusers config folder for single files (default: the shipped SD1.5 one)."""
    p = Path(config) if config else SD15_CONFIG_DIR
    if not (p / "unet" / "config.json").is_file():
        raise ModelFileError(f"config folder {p} has no unet/config.json; pass a diffusers-style config folder.")
    return p


def tokenizer_for(folder: Optional[Path]) -> Any:
    """CLIP tokenizer: from `folder`/tokenizer when it has the vocab, else the shipped one; always 77 tokens."""
    from transformers import CLIPTokenizer

    tok = folder / "tokenizer" if folder else None
    src = tok if tok is not None and (tok / "vocab.json").is_file() else TOKENIZER_DIR
    return CLIPTokenizer(str(src / "vocab.json"), str(src / "merges.txt"), model_max_length=77)


def controlnet_config_from_unet(unet_config: Mapping[str, Any], shapes: Mapping[str, Tuple[int, ...]]) -> Dict[str, Any]:
    """A ControlNetModel config for a single file: the base UNet's layout + the hint-encoder widths in the file."""
    keys = [
        "in_channels", "flip_sin_to_cos", "freq_shift", "down_block_types", "only_cross_attention",
        "block_out_channels", "layers_per_block", "downsample_padding", "mid_block_scale_factor", "act_fn",
        "norm_num_groups", "norm_eps", "cross_attention_dim", "transformer_layers_per_block", "attention_head_dim",
        "num_attention_heads", "use_linear_projection", "upcast_attention", "resnet_time_scale_shift",
    ]
    cfg = {k: unet_config[k] for k in keys if k in unet_config}
    # hint encoder widths: conv_in, then every second block (the ones that change width)
    widths: List[int] = []
    cond_in = _find(shapes, "controlnet_cond_embedding.conv_in.weight") or _find(shapes, "input_hint_block.0.weight")
    if cond_in is not None:
        widths.append(cond_in[0])
        cfg["conditioning_channels"] = cond_in[1]
        i = 1
        while True:
            blk = _find(shapes, f"controlnet_cond_embedding.blocks.{i}.weight") or _find(shapes, f"input_hint_block.{2 * (i + 1)}.weight")
            if blk is None or i > 32:
                break
            widths.append(blk[0])
            i += 2
        cfg["conditioning_embedding_out_channels"] = widths
    # the ControlNet's own cross-attention width may differ (wrong family): take it from the file
    ca = _find(shapes, "attn2.to_k.weight")
    if ca is not None:
        cfg["cross_attention_dim"] = ca[-1]
    cfg["_class_name"] = "ControlNetModel"
    return cfg


# ------------------------------------------------------------------ loading


def _dtype_kw(dtype: Any) -> Dict[str, Any]:
    """`dtype=` on diffusers that renamed it (0.36+), `torch_dtype=` on older ones."""
    if dtype is None:
        return {}
    try:
        from diffusers.utils import deprecation_utils

        renamed = hasattr(deprecation_utils, "_resolve_dtype")
    except ImportError:  # pragma: no cover
        renamed = False
    return {"dtype": dtype} if renamed else {"torch_dtype": dtype}


def _is_hub_id(value: str) -> bool:
    return "/" in value and not os.path.exists(value) and not value.startswith((".", "/", "~")) and value.count("/") == 1


def load_controlnet(path: PathLike, role: str, unet_config: Mapping[str, Any], dtype: Any = None, *, allow_download: bool = False) -> Any:
    """One ControlNetModel from a single file (original or diffusers layout) or a diffusers folder."""
    from diffusers import ControlNetModel

    if allow_download and _is_hub_id(str(path)):
        log.info("zrealism: downloading %s from the Hugging Face Hub (allow_download=True)", path)
        return ControlNetModel.from_pretrained(str(path), **_dtype_kw(dtype))
    info = check_controlnet(path, role, unet_config)
    p = info.path
    try:
        if p.is_dir():
            return ControlNetModel.from_pretrained(str(p), local_files_only=True, **_dtype_kw(dtype))
        cfg = controlnet_config_from_unet(unet_config, info.shapes)
        with tempfile.TemporaryDirectory(prefix="zrealism-cn-") as tmp:
            Path(tmp, "config.json").write_text(json.dumps(cfg), encoding="utf-8")
            state: Any = str(p)
            if info.layout == "ldm" and not any(k.startswith("control_model.") for k in info.shapes):
                # unprefixed original layout: diffusers expects `control_model.`; hand it the dict
                state = {"control_model." + k: v for k, v in read_weights(p).items()}
            return ControlNetModel.from_single_file(state, config=tmp, local_files_only=True, **_dtype_kw(dtype))
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{p.name} could not be loaded as the {ROLES[role]['what']}: {type(exc).__name__}: {exc}. {_hint(role)}"
        ) from exc


def load_vae(path: PathLike, config: Path, dtype: Any = None) -> Any:
    """AutoencoderKL from a single file (original/diffusers layout, or a full checkpoint's VAE) or a folder."""
    from diffusers import AutoencoderKL

    info = check_vae(path)
    p = info.path
    try:
        if p.is_dir():
            return AutoencoderKL.from_pretrained(str(p), local_files_only=True, **_dtype_kw(dtype))
        if info.layout == "diffusers":
            model = AutoencoderKL.from_config(AutoencoderKL.load_config(str(config), subfolder="vae"))
            model.load_state_dict(read_weights(p), strict=True)
            return model.to(dtype) if dtype is not None else model
        return AutoencoderKL.from_single_file(str(p), config=str(config), subfolder="vae", local_files_only=True, **_dtype_kw(dtype))
    except Exception as exc:
        raise ModelFileError(f"{p.name} could not be loaded as the VAE: {type(exc).__name__}: {exc}. {_hint('vae')}") from exc


def load_sd_pipeline(
    base: PathLike,
    controlnets: List[Any],
    *,
    vae: Any = None,
    config: Optional[PathLike] = None,
    dtype: Any = None,
    allow_download: bool = False,
    checked: Optional[FileInfo] = None,
) -> Any:
    """StableDiffusionControlNetImg2ImgPipeline from a base file/folder with the given ControlNet models.
    checked: what check_base(base) returned, when the caller has checked it already (it reads the file)."""
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    multi = skipping_multi_controlnet(controlnets)
    common = dict(controlnet=multi, safety_checker=None, feature_extractor=None, requires_safety_checker=False, **_dtype_kw(dtype))
    if vae is not None:
        common["vae"] = vae
    cls = StableDiffusionControlNetImg2ImgPipeline
    if allow_download and _is_hub_id(str(base)):
        log.info("zrealism: downloading %s from the Hugging Face Hub (allow_download=True)", base)
        return cls.from_pretrained(str(base), **common)
    info = checked if checked is not None else check_base(base)
    p = info.path
    try:
        if p.is_dir():
            pipe = cls.from_pretrained(str(p), local_files_only=True, **common)
            pipe.tokenizer.model_max_length = 77
            return pipe
        cfg = config_folder(config)
        return cls.from_single_file(
            str(p), config=str(cfg), local_files_only=True, tokenizer=tokenizer_for(cfg), **common
        )
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(
            f"{p.name} could not be loaded as an SD1.5 checkpoint: {type(exc).__name__}: {exc}. "
            f"If it is a fine-tune with other shapes, pass its diffusers config folder as config=. {_hint('base')}"
        ) from exc


def base_unet_config(base: PathLike, config: Optional[PathLike] = None) -> Dict[str, Any]:
    """The UNet config a base model will load with (folder: its own; single file: the config folder's)."""
    p = Path(base)
    if p.is_dir():
        return _read_json(p / "unet" / "config.json", "base")
    return _read_json(config_folder(config) / "unet" / "config.json", "base")


