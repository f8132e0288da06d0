"""SD1.5 LoRAs: read a file once, apply it to the loaded weights for one job, restore them exactly after.

Formats (recognised from the key names, no model built):
- kohya / A1111: `lora_unet_<module_with_underscores>.lora_down/lora_up.weight` + `.alpha`,
  `lora_te_...` for the text encoder; LyCORIS LoCon (the same keys on conv layers), LoHa
  (`hada_w1_a/b`, `hada_w2_a/b`) and LoKr (`lokr_w1`, `lokr_w2` or their `_a/_b` factors);
- diffusers / peft: `unet.<module>.lora_A/lora_B.weight` (also without the `unet.` prefix, with
  `base_model.model.`, or the older `lora.down/up` and `processor.to_q_lora` spellings),
  `text_encoder.<module>...` for the text encoder;
- the UNet's layers also under their original LDM names (`lora_unet_input_blocks_4_1_proj_in`,
  `diffusion_model.input_blocks.4.1.proj_in`: ComfyUI's LoRA saver), the text encoder's with or
  without the `text_model.` level.
Every key must name a layer of this UNet / text encoder with the right shape; otherwise the file is
for another model family (SDXL, SD2, Flux...) and the error says which and names the file.

Applying (ComfyUI's own approach): for each layer the LoRA touches, the weight is copied aside (to
`backup_device`, the CPU by default) and `weight += strength * scale * (up @ down)` is written in
place. Restoring copies the saved weights back, so the plain pipeline is bit-identical afterwards,
and a LoRA at strength 0 is not applied at all. The clip's motion UNet shares the still UNet's
Parameter objects (animation.py), so the same in-place update reaches the clip.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import ModelFileError
from ..models.ldm_keys import unet_module_names_to_ldm

log = logging.getLogger("zrealism")

LORA_HINT = "Put SD1.5 LoRAs in ComfyUI/models/loras/ (kohya/A1111, LyCORIS LoCon/LoHa/LoKr or diffusers/peft files)."

TARGETS = ("unet", "text_encoder")

# (regex on the key's end, part name); the module key is what precedes the match
_PARTS: Tuple[Tuple[str, str], ...] = (
    (r"\.lora_down\.weight$", "down"), (r"\.lora_up\.weight$", "up"), (r"\.lora_mid\.weight$", "mid"),
    (r"\.lora_A(?:\.[^.]+)?\.weight$", "down"), (r"\.lora_B(?:\.[^.]+)?\.weight$", "up"),
    (r"\.lora(?:_linear_layer)?\.down\.weight$", "down"), (r"\.lora(?:_linear_layer)?\.up\.weight$", "up"),
    (r"_lora\.down\.weight$", "down"), (r"_lora\.up\.weight$", "up"),
    (r"\.hada_w1_a$", "w1a"), (r"\.hada_w1_b$", "w1b"), (r"\.hada_w2_a$", "w2a"), (r"\.hada_w2_b$", "w2b"),
    (r"\.hada_t1$", "t1"), (r"\.hada_t2$", "t2"),
    (r"\.lokr_w1$", "k1"), (r"\.lokr_w2$", "k2"), (r"\.lokr_w1_a$", "k1a"), (r"\.lokr_w1_b$", "k1b"),
    (r"\.lokr_w2_a$", "k2a"), (r"\.lokr_w2_b$", "k2b"), (r"\.lokr_t2$", "t2"),
    (r"\.alpha$", "alpha"), (r"\.dora_scale$", "dora"), (r"\.lora_magnitude_vector(?:\.[^.]+)?(?:\.weight)?$", "dora"),
)
_PART_RES = [(re.compile(p), name) for p, name in _PARTS]
_OLD_PROC = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}


@dataclass
class LoraLayer:
    """One layer's update: which model and module, the factor tensors (CPU), alpha."""

    target: str
    module: str
    parts: Dict[str, Any]
    alpha: Optional[float] = None

    def delta(self, shape: Sequence[int], device: Any, dtype: Any) -> Any:
        """The full-rank update (alpha/rank scaling included, strength not), float32 on `device`."""
        import torch

        t = {k: v.to(device=device, dtype=torch.float32) for k, v in self.parts.items()}
        if "down" in t:
            down, up = t["down"], t["up"]
            rank = down.shape[0]
            d = up.flatten(1) @ down.flatten(1)
        elif "w1a" in t:  # LoHa: Hadamard product of two low-rank products
            rank = t["w1b"].shape[0]
            d = (t["w1a"] @ t["w1b"].flatten(1)) * (t["w2a"] @ t["w2b"].flatten(1))
        else:  # LoKr: Kronecker product
            w1 = t["k1"] if "k1" in t else t["k1a"] @ t["k1b"]
            w2 = t["k2"] if "k2" in t else t["k2a"] @ t["k2b"].flatten(1)
            rank = t["k2b"].shape[0] if "k2b" in t else (t["k1b"].shape[0] if "k1b" in t else None)
            d = torch.kron(w1.flatten(1) if w1.dim() > 2 else w1, w2.reshape(w2.shape[0], -1))
        return (d * self._scale(rank)).reshape(tuple(shape))

    def _scale(self, rank: Optional[int]) -> float:
        return (self.alpha / rank) if (self.alpha is not None and rank) else 1.0

    def add_to(self, weight: Any, strength: float) -> None:
        """weight += strength * delta, in place, in float32 maths. A plain LoRA on a float32 weight is one
        fused addmm into the weight: no full-size temporaries (each would be as large as the weight)."""
        import torch

        if "down" in self.parts and weight.dtype == torch.float32 and weight.is_contiguous():
            down = self.parts["down"].to(device=weight.device, dtype=torch.float32).flatten(1)
            up = self.parts["up"].to(device=weight.device, dtype=torch.float32).flatten(1)
            weight.view(weight.shape[0], -1).addmm_(up, down, alpha=float(strength) * self._scale(down.shape[0]))
            return
        d = self.delta(weight.shape, weight.device, None) * float(strength)
        weight.copy_((weight.float() + d).to(weight.dtype))


@dataclass
class LoraFile:
    """A LoRA read from disk: its layers, ready to apply to the pipeline it was checked against."""

    path: Path
    format: str
    layers: List[LoraLayer] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    def targets(self) -> List[str]:
        return sorted({l.target for l in self.layers})

    def __repr__(self) -> str:
        return f"LoraFile({self.name!r}, {self.format}, {len(self.layers)} layers: {', '.join(self.targets())})"


# ------------------------------------------------------------------ reading

def read_lora_state_dict(path: Any) -> Dict[str, Any]:
    """The tensors of a LoRA file: .safetensors first, torch.load(weights_only=True) for .pt/.ckpt/.bin."""
    from ..models.files import SAFE_SUFFIXES, TORCH_SUFFIXES, load_torch_file, read_shapes

    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ModelFileError(f"LoRA file not found: {p}. {LORA_HINT}")
    if p.stat().st_size == 0:
        raise ModelFileError(f"LoRA {p.name} is an empty file (failed download?). {LORA_HINT}")
    suffix = p.suffix.lower()
    if suffix in SAFE_SUFFIXES:
        read_shapes(p)  # a clear error for a truncated/corrupt header
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p)))
        except Exception as exc:
            raise ModelFileError(f"LoRA {p.name} is not a readable .safetensors file (truncated or corrupt download?): {exc}. Download it again.") from exc
    if suffix in TORCH_SUFFIXES:
        return {k: v for k, v in load_torch_file(p).items() if hasattr(v, "shape")}
    raise ModelFileError(f"LoRA {p.name}: unsupported file type {suffix!r}; use .safetensors (or .pt/.ckpt). {LORA_HINT}")


def _split(key: str) -> Tuple[str, Optional[str]]:
    for rx, part in _PART_RES:
        m = rx.search(key)
        if m:
            module = key[: m.start()]
            if part in ("down", "up") and m.group(0).startswith("_lora"):  # old attn-processor spelling
                head, _, last = module.rpartition(".")
                name = last + "_lora"
                module = head.replace(".processor", "") + "." + _OLD_PROC.get(name, last)
            module = module.replace(".processor.", ".")
            return module, part
    return key, None


def _family_of(keys: Iterable[str], shapes: Dict[str, Tuple[int, ...]]) -> Optional[str]:
    """What another-family LoRA is for, from telltale keys and the cross-attention width."""
    keys = list(keys)
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.", "te2.")) or "add_embedding" in k or "label_emb" in k for k in keys):
        return "SDXL"
    if any(k.startswith(("lora_transformer_", "transformer.", "lora_unet_double_blocks", "lora_unet_single_blocks"))
           or "double_blocks" in k or "joint_blocks" in k for k in keys):
        return "a transformer model (Flux/SD3/video), not SD1.5"
    for k, shape in shapes.items():
        module, part = _split(k)
        flat = module.replace("_", ".")
        if part == "down" and "attn2" in flat and "to.k" in flat and len(shape) == 2:
            if shape[1] == 2048:
                return "SDXL (cross-attention 2048)"
            if shape[1] == 1024:
                return "SD2.x (cross-attention 1024)"
    return None


def _aliases(target: str, name: str, ldm: Dict[str, str]) -> List[str]:
    """The names files use for one layer: diffusers' own; for the text encoder with and without the
    `text_model.` level (transformers >= 5.6 dropped it, the files keep it); for the UNet also the
    original LDM name (`input_blocks.4.1.proj_in`), which ComfyUI's LoRA saver and some trainers write."""
    names = [name]
    if target == "text_encoder":
        names.append(name[len("text_model."):] if name.startswith("text_model.") else "text_model." + name)
    elif name in ldm:
        names.append(ldm[name])
    return names


def _module_tables(models: Dict[str, Any]) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """alias -> (target, module name) for every layer with a weight, per naming scheme."""
    dotted: Dict[str, Tuple[str, str]] = {}
    under: Dict[str, Tuple[str, str]] = {}
    for target, model in models.items():
        if model is None:
            continue
        kohya = "lora_unet_" if target == "unet" else "lora_te_"
        ldm = unet_module_names_to_ldm(model) if target == "unet" and hasattr(model, "config") else {}
        for name, mod in model.named_modules():
            w = getattr(mod, "weight", None)
            if name and w is not None and getattr(w, "dim", lambda: 0)() >= 2:
                for alias in _aliases(target, name, ldm):
                    dotted[f"{target}.{alias}"] = (target, name)
                    under[kohya + alias.replace(".", "_")] = (target, name)
                if name in ldm:
                    dotted["diffusion_model." + ldm[name]] = (target, name)
    return {"dotted": dotted, "under": under}


def _resolve(module_key: str, tables: Dict[str, Dict[str, Tuple[str, str]]]) -> Optional[Tuple[str, str]]:
    if module_key.startswith(("lora_unet_", "lora_te_")):
        return tables["under"].get(module_key)
    key = module_key
    for pre in ("base_model.model.", "model."):
        if key.startswith(pre):
            key = key[len(pre):]
    if key.startswith(TARGETS):
        hit = tables["dotted"].get(key)
        if hit is None and key.startswith("text_encoder."):  # old diffusers spelling of CLIP's projections
            for old, new in (("to_q", "q_proj"), ("to_k", "k_proj"), ("to_v", "v_proj"), ("to_out.0", "out_proj")):
                if key.endswith("." + old):
                    hit = tables["dotted"].get(key[: -len(old)] + new)
        return hit
    return tables["dotted"].get(key) or tables["dotted"].get("unet." + key) or tables["dotted"].get("text_encoder." + key)


def parse_lora(path: Any, models: Dict[str, Any], state: Optional[Dict[str, Any]] = None) -> LoraFile:
    """Read and check a LoRA against `models` ({"unet": ..., "text_encoder": ...}); ModelFileError says why not."""
    p = Path(str(path)).expanduser()
    sd = state if state is not None else read_lora_state_dict(p)
    name = p.name
    if not sd:
        raise ModelFileError(f"{name} holds no tensors; it is not a LoRA. {LORA_HINT}")
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    from ..models.loaders import classify

    kind = classify(p, shapes).kind
    if kind in ("sd15", "sd2", "sdxl", "inpaint", "unet"):
        raise ModelFileError(f"{name} is a full {kind.upper()} model checkpoint, not a LoRA: put it in ComfyUI/models/checkpoints/ "
                             f"and choose it in the Z-Realism Model Loader. {LORA_HINT}")
    if kind in ("controlnet", "controlnet_sdxl", "vae"):
        raise ModelFileError(f"{name} is a {kind.replace('_', ' ')}, not a LoRA. {LORA_HINT}")
    family = _family_of(sd.keys(), shapes)
    if family:
        raise ModelFileError(f"{name} is a LoRA for {family}; Z-Realism runs SD1.5 and needs an SD1.5 LoRA. {LORA_HINT}")

    groups: Dict[str, Dict[str, Any]] = {}
    unknown: List[str] = []
    for key, value in sd.items():
        module, part = _split(key)
        if part is None:
            unknown.append(key)
            continue
        groups.setdefault(module, {})[part] = value
    if unknown and not groups:
        raise ModelFileError(f"{name} is not a LoRA Z-Realism recognises (keys like {unknown[0]!r}). {LORA_HINT}")
    if any("dora" in g for g in groups.values()):
        raise ModelFileError(f"{name} is a DoRA; Z-Realism applies LoRA, LoCon, LoHa and LoKr files, not DoRA. {LORA_HINT}")
    if any(("mid" in g) or ("t1" in g) or ("t2" in g) for g in groups.values()):
        raise ModelFileError(f"{name} uses LyCORIS' Tucker/CP decomposition (lora_mid / hada_t / lokr_t keys), which Z-Realism "
                             f"does not apply; use a LoRA saved without it. {LORA_HINT}")

    tables = _module_tables(models)
    layers: List[LoraLayer] = []
    missing: List[str] = []
    formats = set()
    for module, parts in groups.items():
        alpha = parts.pop("alpha", None)
        if not parts:
            continue  # an alpha without factors (seen in some exports): nothing to apply
        hit = _resolve(module, tables)
        if hit is None:
            missing.append(module)
            continue
        target, mod_name = hit
        formats.add("kohya" if module.startswith("lora_") else "diffusers/peft")
        if "down" in parts and "up" not in parts or "up" in parts and "down" not in parts:
            raise ModelFileError(f"{name} is incomplete: {module} has only one of its two LoRA matrices (corrupt file?). {LORA_HINT}")
        layer = LoraLayer(target, mod_name, dict(parts), float(alpha.item()) if hasattr(alpha, "item") else alpha)
        weight = models[target].get_submodule(mod_name).weight
        try:
            if "down" in parts:
                _check_shape(layer, weight.shape)
            else:  # LoHa/LoKr: build the update once to check it
                layer.delta(weight.shape, "cpu", None)
        except (RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"{name} does not fit this model: layer {mod_name} of the {target.replace('_', ' ')} has shape "
                f"{tuple(weight.shape)} ({str(exc).splitlines()[0][:120]}). It is a LoRA for another model family "
                f"or another SD1.5 variant. {LORA_HINT}"
            ) from exc
        layers.append(layer)
    if missing:
        total = len(missing) + len(layers)
        raise ModelFileError(
            f"{name} is a LoRA for another model: {len(missing)} of its {total} layers do not exist in this SD1.5 "
            f"model (e.g. {missing[0]!r}). Use an SD1.5 LoRA. {LORA_HINT}"
        )
    if not layers:
        raise ModelFileError(f"{name} holds no LoRA layers Z-Realism can apply. {LORA_HINT}")
    fmt = "/".join(sorted(formats))
    if any("w1a" in l.parts for l in layers):
        fmt += " LoHa"
    elif any("k1" in l.parts or "k1a" in l.parts for l in layers):
        fmt += " LoKr"
    return LoraFile(p, fmt, layers)


def _check_shape(layer: LoraLayer, shape: Sequence[int]) -> None:
    down, up = layer.parts["down"], layer.parts["up"]
    out_f, in_f = int(shape[0]), 1
    for s in shape[1:]:
        in_f *= int(s)
    din = 1
    for s in down.shape[1:]:
        din *= int(s)
    if up.shape[0] != out_f or din != in_f or up.flatten(1).shape[1] != down.shape[0]:
        raise ValueError(f"LoRA matrices {tuple(up.shape)} x {tuple(down.shape)} do not make {tuple(shape)}")


# ------------------------------------------------------------------ applying

class Applied:
    """Weights changed in place by apply(); restore() puts the saved originals back (bit-identical)."""

    def __init__(self) -> None:
        self.saved: Dict[int, Tuple[Any, Any]] = {}

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for param, original in self.saved.values():
                param.copy_(original)
        self.saved.clear()


def apply(models: Dict[str, Any], loras: Sequence[Tuple[LoraFile, float]], backup_device: Any = "cpu") -> Applied:
    """Add every (LoRA, strength) with strength != 0 to the weights in place; returns the restore handle.
    On any error the weights already changed are restored before the error propagates."""
    import torch

    done = Applied()
    try:
        with torch.no_grad():
            for lora, strength in loras:
                if float(strength) == 0.0:
                    continue
                for layer in lora.layers:
                    weight = models[layer.target].get_submodule(layer.module).weight
                    if id(weight) not in done.saved:
                        done.saved[id(weight)] = (weight, weight.detach().to(device=backup_device, copy=True))
                    layer.add_to(weight, float(strength))
    except BaseException:
        done.restore()
        raise
    return done


def check_strength(strength: Any, name: str = "LoRA strength") -> float:
    import math

    try:
        s = float(strength)
    except (TypeError, ValueError):
        from ..errors import InputError

        raise InputError(f"{name} must be a number; got {strength!r}.") from None
    if not math.isfinite(s) or not -4.0 <= s <= 4.0:
        from ..errors import InputError

        raise InputError(f"{name} must be between -4 and 4; got {strength!r}.")
    return s
