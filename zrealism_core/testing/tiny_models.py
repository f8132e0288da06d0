"""Tiny random-weight SD1.5-shaped models, and writers that put them on disk the way users have them.

Why: tests, `zrealism selftest` and the ComfyUI integration test need a complete
ControlNet img2img stack that builds in well under a second and needs no download.
The shapes follow diffusers' own pipeline tests (UNet 32/64 channels, cross-attention 32),
with the real CLIP tokenizer (so the text encoder has the real vocab size, 49408).

Building blocks (all CPU, float32, deterministic for a given seed):
    tiny_unet(seed), tiny_controlnet(seed), tiny_vae(seed), tiny_text_encoder(seed),
    clip_tokenizer(), tiny_scheduler(), tiny_components(seed) -> dict

Writers (what a user's disk looks like):
    write_tiny_config_folder(dir)        configs only (like zrealism_core/data/sd15), needed to load
                                         a tiny single file: load_pipeline(..., config=dir)
    write_tiny_diffusers_folder(dir)     a diffusers pipeline folder (model_index.json + weights)
    write_tiny_single_file(path)         an original-layout (LDM) checkpoint .safetensors
    write_tiny_controlnet(path, layout)  a ControlNet: "ldm" single file, "diffusers" single file,
                                         or "folder" (config.json + weights)
    write_tiny_model_set(dir)            all of the above in one folder; returns TinyModelSet paths

Converters to the original LDM keys: ldm_layout.py. Real-SD1.5-shaped models for ComfyUI's own
loaders: native_models.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from ..data import TOKENIZER_DIR
from .ldm_layout import controlnet_to_ldm, ldm_checkpoint, text_encoder_to_ldm, unet_to_ldm, vae_to_ldm  # noqa: F401  (public here too)
from .model_configs import (  # noqa: F401  (public here too)
    SD15_SCHEDULER_CONFIG, SD15_TEXT_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG, TINY_CONTROLNET_CONFIG, TINY_TEXT_CONFIG,
    TINY_UNET_CONFIG, TINY_VAE_CONFIG, TOKENIZER_CONFIG,
)

PathLike = Union[str, Path]


# ------------------------------------------------------------------ components

def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def tiny_unet(seed: int = 0):
    from diffusers import UNet2DConditionModel

    _seeded(seed)
    return UNet2DConditionModel(**TINY_UNET_CONFIG).train(False)


def reinit_zero_convs(controlnet: Any, seed: int = 0, std: float = 0.05) -> Any:
    """Give a ControlNet's zero-initialised output convs random values.

    A freshly built ControlNet adds exactly zero to the UNet (that is how training starts), so in
    tests it would have no effect at all; scale and start/end checks need it to matter.
    """
    import torch

    gen = torch.Generator().manual_seed(seed + 1000)
    modules = list(controlnet.controlnet_down_blocks) + [
        controlnet.controlnet_mid_block,
        controlnet.controlnet_cond_embedding.conv_out,
    ]
    with torch.no_grad():
        for m in modules:
            # drawn on the CPU (device-independent numbers), then copied to wherever the net lives
            m.weight.copy_(torch.randn(m.weight.shape, generator=gen, device="cpu") * std)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, device="cpu") * std)
    return controlnet


def tiny_controlnet(seed: int = 1):
    from diffusers import ControlNetModel

    _seeded(seed)
    return reinit_zero_convs(ControlNetModel(**TINY_CONTROLNET_CONFIG), seed).train(False)


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    _seeded(seed)
    return AutoencoderKL(**TINY_VAE_CONFIG).train(False)


def tiny_text_encoder(seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel

    _seeded(seed)
    return CLIPTextModel(CLIPTextConfig(**TINY_TEXT_CONFIG)).train(False)


def clip_tokenizer(folder: Optional[PathLike] = None):
    """The real CLIP BPE tokenizer from the shipped vocab/merges, forced to 77 tokens."""
    from transformers import CLIPTokenizer

    folder = Path(folder) if folder else TOKENIZER_DIR
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def tiny_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SD15_SCHEDULER_CONFIG)


def tiny_components(seed: int = 0) -> Dict[str, Any]:
    """All parts of a tiny pipeline: unet, vae, text_encoder, tokenizer, scheduler,
    controlnets=[depth, pose] (two different random nets)."""
    return dict(
        unet=tiny_unet(seed),
        vae=tiny_vae(seed),
        text_encoder=tiny_text_encoder(seed),
        tokenizer=clip_tokenizer(),
        scheduler=tiny_scheduler(),
        controlnets=[tiny_controlnet(seed + 1), tiny_controlnet(seed + 2)],
    )


def tiny_sd_pipeline(seed: int = 0):
    """A diffusers StableDiffusionControlNetImg2ImgPipeline made of tiny parts (no file I/O)."""
    from diffusers import MultiControlNetModel, StableDiffusionControlNetImg2ImgPipeline

    c = tiny_components(seed)
    return StableDiffusionControlNetImg2ImgPipeline(
        vae=c["vae"],
        text_encoder=c["text_encoder"],
        tokenizer=c["tokenizer"],
        unet=c["unet"],
        controlnet=MultiControlNetModel(c["controlnets"]),
        scheduler=c["scheduler"],
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


# ------------------------------------------------------------------ diffusers -> LDM key mapping


# ------------------------------------------------------------------ writers

def _contiguous(sd: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v.detach().contiguous().clone() for k, v in sd.items()}


def _save(sd: Mapping[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(_contiguous(sd), str(path))
    return path


def _text_config_dict() -> Dict[str, Any]:
    from transformers import CLIPTextConfig

    cfg = CLIPTextConfig(**TINY_TEXT_CONFIG).to_dict()
    cfg["architectures"] = ["CLIPTextModel"]
    return cfg


def write_config_folder(
    folder: PathLike,
    *,
    unet_config: Mapping[str, Any],
    vae_config: Mapping[str, Any],
    text_config: Mapping[str, Any],
    scheduler_config: Optional[Mapping[str, Any]] = None,
    tokenizer_files: bool = True,
) -> Path:
    """A diffusers config folder (no weights) that `from_single_file(config=...)` reads offline."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    root = Path(folder)
    # Full config dicts (class defaults + ours) without allocating any weights.
    unet_full = _full_config(UNet2DConditionModel, unet_config)
    vae_full = _full_config(AutoencoderKL, vae_config)
    sched_full = _full_config(DDIMScheduler, scheduler_config or SD15_SCHEDULER_CONFIG, cls_name="DDIMScheduler")
    _write_json(root / "unet" / "config.json", unet_full)
    _write_json(root / "vae" / "config.json", vae_full)
    _write_json(root / "scheduler" / "scheduler_config.json", sched_full)
    _write_json(root / "text_encoder" / "config.json", dict(text_config))
    _write_json(root / "tokenizer" / "tokenizer_config.json", TOKENIZER_CONFIG)
    if tokenizer_files:
        import shutil

        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(TOKENIZER_DIR / name, root / "tokenizer" / name)
    _write_json(root / "model_index.json", _model_index())
    return root


def _full_config(cls: Any, partial: Mapping[str, Any], cls_name: Optional[str] = None) -> Dict[str, Any]:
    """Defaults of `cls.__init__` overlaid with `partial`, as `save_config` would write them."""
    import inspect

    sig = inspect.signature(cls.__init__)
    cfg: Dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.default is not inspect.Parameter.empty:
            cfg[name] = p.default
    cfg.update(partial)
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    cfg["_class_name"] = cls_name or cls.__name__
    return cfg


def _model_index() -> Dict[str, Any]:
    return {
        "_class_name": "StableDiffusionPipeline",
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "image_encoder": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_sd15_config_folder(folder: PathLike, tokenizer_files: bool = False) -> Path:
    """The real SD1.5 config folder (how zrealism_core/data/sd15 was made). Without
    `tokenizer_files` the tokenizer vocab/merges are read from data/clip-tokenizer at load time."""
    return write_config_folder(
        folder, unet_config=SD15_UNET_CONFIG, vae_config=SD15_VAE_CONFIG, text_config=SD15_TEXT_CONFIG,
        tokenizer_files=tokenizer_files,
    )


def write_tiny_config_folder(folder: PathLike) -> Path:
    """Configs of the tiny models (pass as `config=` when loading a tiny single file)."""
    return write_config_folder(
        folder, unet_config=TINY_UNET_CONFIG, vae_config=TINY_VAE_CONFIG, text_config=_text_config_dict()
    )


def write_tiny_diffusers_folder(folder: PathLike, seed: int = 0, components: Optional[Dict[str, Any]] = None) -> Path:
    """A diffusers-format base model folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)."""
    from diffusers import StableDiffusionPipeline

    c = components or tiny_components(seed)
    pipe = StableDiffusionPipeline(
        vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"], unet=c["unet"],
        scheduler=c["scheduler"], safety_checker=None, feature_extractor=None, image_encoder=None,
        requires_safety_checker=False,
    )
    root = Path(folder)
    pipe.save_pretrained(root, safe_serialization=True)
    # transformers writes model_max_length 77 from the tokenizer object; make that explicit anyway
    tok_cfg = root / "tokenizer" / "tokenizer_config.json"
    data = json.loads(tok_cfg.read_text(encoding="utf-8"))
    data["model_max_length"] = 77
    _write_json(tok_cfg, data)
    return root


def write_tiny_single_file(path: PathLike, seed: int = 0, components: Optional[Dict[str, Any]] = None) -> Path:
    """An original-layout SD checkpoint (`model.diffusion_model.*`, `first_stage_model.*`,
    `cond_stage_model.transformer.text_model.*`) of the tiny models, as .safetensors."""
    c = components or tiny_components(seed)
    return _save(ldm_checkpoint(c["unet"], c["vae"], c["text_encoder"]), Path(path))


def write_tiny_controlnet(path: PathLike, layout: str = "ldm", seed: int = 1) -> Path:
    """A tiny ControlNet on disk.

    layout "ldm": original single file (`control_model.input_hint_block...`) - the usual download;
    "diffusers": single file with diffusers keys (`controlnet_cond_embedding...`);
    "folder": a diffusers folder with config.json + diffusion_pytorch_model.safetensors.
    """
    cn = tiny_controlnet(seed)
    p = Path(path)
    if layout == "ldm":
        return _save(controlnet_to_ldm(cn.state_dict(), cn.config), p)
    if layout == "diffusers":
        return _save(cn.state_dict(), p)
    if layout == "folder":
        cn.save_pretrained(p, safe_serialization=True)
        return p
    raise ValueError(f"layout must be 'ldm', 'diffusers' or 'folder', not {layout!r}")


def write_tiny_vae(path: PathLike, seed: int = 5) -> Path:
    """A tiny VAE as an original-layout single file (like vae-ft-mse-840000-ema-pruned.safetensors)."""
    vae = tiny_vae(seed)
    return _save(vae_to_ldm(vae.state_dict(), vae.config, prefix=""), Path(path))


@dataclass
class TinyModelSet:
    """Paths written by write_tiny_model_set."""

    root: Path
    config: Path           # tiny config folder (pass as config= for the single file)
    checkpoint: Path       # LDM single file
    diffusers: Path        # diffusers folder (loads without config=)
    depth_controlnet: Path  # LDM single file
    pose_controlnet: Path   # diffusers-layout single file
    vae: Path              # LDM single-file VAE
    detail_controlnet: Optional[Path] = None  # LDM single file named like a line-art net (the optional detail net)


def write_tiny_model_set(folder: PathLike, seed: int = 0) -> TinyModelSet:
    """Everything a test or the selftest needs, under `folder` (about 20 MB, under a second)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    c = tiny_components(seed)  # the single file and the folder hold the same weights
    return TinyModelSet(
        root=root,
        config=write_tiny_config_folder(root / "tiny-sd15-config"),
        checkpoint=write_tiny_single_file(root / "tiny-sd15.safetensors", seed, c),
        diffusers=write_tiny_diffusers_folder(root / "tiny-sd15-diffusers", seed, c),
        depth_controlnet=write_tiny_controlnet(root / "tiny-control-depth.safetensors", "ldm", seed + 1),
        pose_controlnet=write_tiny_controlnet(root / "tiny-control-openpose.safetensors", "diffusers", seed + 2),
        vae=write_tiny_vae(root / "tiny-vae.safetensors", seed + 5),
        detail_controlnet=write_tiny_controlnet(root / "tiny-control-lineart.safetensors", "ldm", seed + 3),
    )


# ------------------------------------------------------------------ a set ComfyUI's own loaders accept


