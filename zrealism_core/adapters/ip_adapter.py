"""SD1.5 IP-Adapter (plain, plus, plus-face, full-face) with its CLIP image encoder, offline.

Files (what ComfyUI users keep):
- models/ipadapter/: ip-adapter_sd15.safetensors, ip-adapter-plus_sd15.safetensors,
  ip-adapter-plus-face_sd15.safetensors (flat `image_proj.*` / `ip_adapter.N.to_k_ip.weight` keys), or the
  original .bin (a {"image_proj": ..., "ip_adapter": ...} dict, read with torch.load(weights_only=True));
- models/clip_vision/: CLIP ViT-H/14 (CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors, the transformers
  layout `vision_model.*` + `visual_projection.weight`). Its config ships in zrealism_core/data/clip_vision_h14;
  another encoder's config is read from its shapes (heads = width / 64) - only to say it is the wrong one,
  unless its widths fit the IP-Adapter (the tiny test encoder).

Checks before anything is built: an SDXL IP-Adapter (cross-attention 2048), one for another UNet, FaceID
(needs face-recognition embeddings), no clip_vision file, an image encoder whose widths the adapter does
not take (ViT-bigG, ViT-L) - each a ModelFileError naming the file and what to use.

Per job (`installed`, entered by adapters.views.active inside the job, after placement): the adapter's
attention processors replace the UNet's cross-attention processors (the motion UNet's too, same names),
the image projection becomes the UNet's `encoder_hid_proj`; the reference image's embeddings are passed
to the diffusers pipeline as `ip_adapter_image_embeds`, laid out `[uncond; cond]` along dim 0 when CFG
runs (the uncond half is the zero image's embedding for plus/full, zeros for plain: diffusers' rule), so
guidance.py's cfg_end slicing takes the cond half like every other CFG-doubled tensor. start/end: the
adapter's scale is `weight` inside the window of executed steps and 0 outside (the control-guidance rule).
On exit the UNet's own processors, projection and config are put back exactly.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..data import CLIP_VISION_H14_CONFIG
from ..errors import InputError, ModelFileError

log = logging.getLogger("zrealism")

IP_HINT = ("Put SD1.5 IP-Adapters (ip-adapter_sd15, ip-adapter-plus_sd15, ip-adapter-plus-face_sd15 from "
           "huggingface.co/h94/IP-Adapter, models/) in ComfyUI/models/ipadapter/.")
CV_HINT = ("Put the CLIP ViT-H/14 image encoder in ComfyUI/models/clip_vision/ (CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors: "
           "h94/IP-Adapter models/image_encoder/model.safetensors, renamed).")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KNOWN_ENCODERS = {1280: "CLIP ViT-H/14", 1664: "CLIP ViT-bigG/14 (the SDXL IP-Adapter encoder)", 1024: "CLIP ViT-L/14", 768: "CLIP ViT-B"}

_BUILD_LOCK = threading.Lock()


# ------------------------------------------------------------------ reading and checking

def read_ip_adapter(path: Any) -> Dict[str, Dict[str, Any]]:
    """{"image_proj": {...}, "ip_adapter": {...}} from a .safetensors (flat keys) or .bin/.pt file."""
    from ..models.files import SAFE_SUFFIXES, TORCH_SUFFIXES, load_torch_file, read_shapes

    p = _exists(path, "IP-Adapter", IP_HINT)
    if p.suffix.lower() in SAFE_SUFFIXES:
        read_shapes(p)  # a clear error for a truncated/corrupt header
        from safetensors.torch import load_file

        flat = load_file(str(p))
        out: Dict[str, Dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
        for k, v in flat.items():
            head, _, rest = k.partition(".")
            if head in out:
                out[head][rest] = v
    elif p.suffix.lower() in TORCH_SUFFIXES:
        raw = load_torch_file(p)
        out = {"image_proj": dict(raw.get("image_proj") or {}), "ip_adapter": dict(raw.get("ip_adapter") or {})}
    else:
        raise ModelFileError(f"IP-Adapter {p.name}: unsupported file type {p.suffix!r}; use .safetensors or .bin. {IP_HINT}")
    if not out["image_proj"] or not out["ip_adapter"]:
        raise ModelFileError(f"{p.name} is not an IP-Adapter (no image_proj / ip_adapter weights). {IP_HINT}")
    return out


def _exists(path: Any, what: str, hint: str) -> Path:
    if path is None or str(path).strip() in ("", "none"):
        raise ModelFileError(f"No {what} file was given. {hint}")
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ModelFileError(f"{what} file not found: {p}. {hint}")
    if p.stat().st_size == 0:
        raise ModelFileError(f"{what} {p.name} is an empty file (failed download?). {hint}")
    return p


def adapter_kind(sd: Dict[str, Dict[str, Any]]) -> str:
    proj = sd["image_proj"]
    if "perceiver_resampler.proj_in.weight" in proj or "norm.weight" in proj and "proj.0.weight" in proj:
        return "faceid"
    if "proj.weight" in proj:
        return "plain"
    if "proj.3.weight" in proj:
        return "full"
    if "latents" in proj and "proj_in.weight" in proj:
        return "plus"
    return "unknown"


def check_ip_adapter(name: str, sd: Dict[str, Dict[str, Any]], unet: Any) -> str:
    """The adapter's kind after checking it fits `unet` (family, layer count); ModelFileError otherwise."""
    kind = adapter_kind(sd)
    if kind == "faceid":
        raise ModelFileError(f"{name} is an IP-Adapter FaceID; it needs face-recognition (insightface) embeddings, which "
                             f"also fail on drawn faces. Use ip-adapter-plus-face_sd15 or ip-adapter-plus_sd15. {IP_HINT}")
    if kind == "unknown":
        raise ModelFileError(f"{name} is not an IP-Adapter layout Z-Realism knows (plain, plus, plus-face, full-face). {IP_HINT}")
    ks = sorted(k for k in sd["ip_adapter"] if k.endswith(".to_k_ip.weight"))
    widths = {tuple(sd["ip_adapter"][k].shape)[-1] for k in ks}
    want = int(unet.config.cross_attention_dim)
    if 2048 in widths:
        raise ModelFileError(f"{name} is an IP-Adapter for SDXL (cross-attention 2048); Z-Realism runs SD1.5: use an "
                             f"*_sd15 IP-Adapter. {IP_HINT}")
    if widths != {want}:
        fam = {768: "SD1.5", 1024: "SD2.x"}.get(next(iter(widths)), f"cross-attention {sorted(widths)}")
        raise ModelFileError(f"{name} is an IP-Adapter for another model ({fam}; this checkpoint has cross-attention {want}). {IP_HINT}")
    n_cross = sum(1 for k in unet.attn_processors if not k.endswith("attn1.processor"))
    if len(ks) != n_cross:
        raise ModelFileError(f"{name} has {len(ks)} attention layers but this UNet has {n_cross}; it is for another model. {IP_HINT}")
    return kind


def encoder_config(path: Path, shapes: Dict[str, Tuple[int, ...]]) -> Dict[str, Any]:
    """A CLIPVisionConfig dict for a clip_vision file: the shipped ViT-H/14 one when the shapes are ViT-H's,
    otherwise read from the shapes."""
    pre = "vision_model."
    if not any(k.startswith(pre) for k in shapes):
        if any(k.startswith(("visual.", "model.visual.")) for k in shapes):
            raise ModelFileError(f"{path.name} is an open_clip-layout image encoder; use the transformers-layout file. {CV_HINT}")
        raise ModelFileError(f"{path.name} is not a CLIP vision model (no vision_model.* weights). {CV_HINT}")
    patch = shapes.get(pre + "embeddings.patch_embedding.weight")
    pos = shapes.get(pre + "embeddings.position_embedding.weight")
    fc1 = shapes.get(pre + "encoder.layers.0.mlp.fc1.weight")
    if patch is None or pos is None or fc1 is None:
        raise ModelFileError(f"{path.name} is an incomplete CLIP vision model (corrupt file?). {CV_HINT}")
    hidden = int(patch[0])
    layers = 1 + max(int(k.split(".")[3]) for k in shapes if k.startswith(pre + "encoder.layers."))
    proj = shapes.get("visual_projection.weight")
    grid = int(round((int(pos[0]) - 1) ** 0.5))
    cfg = dict(hidden_size=hidden, intermediate_size=int(fc1[0]), num_hidden_layers=layers, patch_size=int(patch[-1]),
               image_size=grid * int(patch[-1]), projection_dim=int(proj[0]) if proj else hidden, num_channels=int(patch[1]))
    shipped = json.loads(Path(CLIP_VISION_H14_CONFIG).read_text(encoding="utf-8"))
    if all(shipped.get(k) == v for k, v in cfg.items()):
        return dict(shipped, _has_projection=proj is not None)
    cfg.update(num_attention_heads=max(1, hidden // 64), hidden_act="gelu", layer_norm_eps=1e-5, _has_projection=proj is not None)
    return cfg


def check_encoder_fits(ip_name: str, kind: str, sd: Dict[str, Dict[str, Any]], cv_name: str, cfg: Dict[str, Any]) -> None:
    proj = sd["image_proj"]
    if kind == "plain":
        if not cfg.get("_has_projection", True):
            raise ModelFileError(f"{cv_name} has no visual projection (visual_projection.weight), which {ip_name} (a plain "
                                 f"IP-Adapter) needs; use the full CLIP ViT-H/14 image encoder file. {CV_HINT}")
        need, have, what = int(proj["proj.weight"].shape[-1]), int(cfg["projection_dim"]), "image embedding"
    elif kind == "plus":
        need, have, what = int(proj["proj_in.weight"].shape[-1]), int(cfg["hidden_size"]), "hidden state"
    else:  # full face
        need, have, what = int(proj["proj.0.weight"].shape[-1]), int(cfg["hidden_size"]), "hidden state"
    if need != have:
        enc = KNOWN_ENCODERS.get(int(cfg["hidden_size"]), f"an image encoder of width {cfg['hidden_size']}")
        raise ModelFileError(
            f"{cv_name} is the wrong image encoder for {ip_name}: it is {enc} ({what} width {have}), the IP-Adapter takes "
            f"width {need}. SD1.5 IP-Adapters need CLIP ViT-H/14. {CV_HINT}"
        )


# ------------------------------------------------------------------ loaded modules (once per pipeline and file)

@dataclass
class IPAdapterModules:
    kind: str
    projection: Any                 # diffusers MultiIPAdapterImageProjection
    processors: Dict[str, Any]      # cross-attention processor name -> IPAdapterAttnProcessor(2_0)
    holder: Any                     # nn.ModuleList of the processors (placement/tracking)


def load_clip_vision(path: Any, dtype: Any = None) -> Tuple[Any, Dict[str, Any]]:
    """CLIPVisionModelWithProjection from one file, offline; returns (model, config dict)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from ..models.files import read_weights, read_shapes

    p = _exists(path, "clip_vision (image encoder)", CV_HINT)
    shapes = read_shapes(p)
    cfg = encoder_config(p, shapes)
    config = CLIPVisionConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type") and not k.startswith("_")})
    try:
        import torch

        state = read_weights(p)
        state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
        if "visual_projection.weight" not in state:  # a file without the projection (plus adapters do not use it)
            state["visual_projection.weight"] = torch.zeros(config.projection_dim, config.hidden_size)
        with torch.device("meta"):  # structure only: ViT-H's random init would cost seconds and 2.5 GB for nothing
            model = CLIPVisionModelWithProjection(config)
        model.load_state_dict(state, strict=True, assign=True)
        emb = model.vision_model.embeddings  # its non-persistent buffer is not in the file
        emb.register_buffer("position_ids", torch.arange(emb.num_positions).expand((1, -1)), persistent=False)
        if any(t.is_meta for t in list(model.parameters()) + list(model.buffers())):
            raise RuntimeError("some weights of the image encoder are not in the file")
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{p.name} could not be loaded as a CLIP image encoder: {type(exc).__name__}: {str(exc)[:300]}. {CV_HINT}") from exc
    model = model.train(False)
    return (model.to(dtype) if dtype is not None else model), cfg


def build_modules(unet: Any, sd: Dict[str, Dict[str, Any]], kind: str, dtype: Any = None) -> IPAdapterModules:
    """The adapter's projection and attention processors, built with diffusers' converters for `unet`
    (nothing is installed on the UNet here)."""
    import torch
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    with torch.no_grad():
        procs_all = unet._convert_ip_adapter_attn_to_diffusers([sd], low_cpu_mem_usage=False)
        procs = {k: v for k, v in procs_all.items() if hasattr(v, "to_k_ip")}
        proj = MultiIPAdapterImageProjection([unet._convert_ip_adapter_image_proj_to_diffusers(sd["image_proj"], low_cpu_mem_usage=False)])
    holder = torch.nn.ModuleList(list(procs.values()))
    for m in (proj, holder):
        m.train(False)
        if dtype is not None:
            m.to(dtype=dtype)
    return IPAdapterModules(kind, proj, procs, holder)


@dataclass
class IPAdapterSpec:
    """What a view asks for: which adapter + encoder (cache keys on the root pipeline), the reference image, weight, window."""

    name: str
    ip_key: Tuple
    cv_key: Tuple
    kind: str
    image: np.ndarray
    weight: float
    start: float = 0.0
    end: float = 1.0
    embeds: Dict[Tuple, Any] = field(default_factory=dict, repr=False)  # (device, dtype) -> (cond, uncond)


def _check_numbers(weight: Any, start: Any, end: Any) -> Tuple[float, float, float]:
    vals = []
    for label, v, lo, hi in (("weight", weight, 0.0, 2.0), ("start", start, 0.0, 1.0), ("end", end, 0.0, 1.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not lo <= float(v) <= hi:
            raise InputError(f"IP-Adapter {label} must be between {lo:g} and {hi:g}; got {v!r}.")
        vals.append(float(v))
    if vals[1] >= vals[2]:
        raise InputError(f"IP-Adapter start ({vals[1]:g}) must be below end ({vals[2]:g}).")
    return vals[0], vals[1], vals[2]


def make_spec(root: Any, ip_path: Any, cv_path: Any, image: Any, *, weight: float = 0.6, start: float = 0.0,
              end: float = 1.0) -> IPAdapterSpec:
    """Check the files and the inputs, load the modules once per root pipeline, and describe the view's IP-Adapter."""
    from ..models.files import file_key
    from ..imaging.images import to_rgb

    w, s, e = _check_numbers(weight, start, end)
    rgb = to_rgb(image, name="IP-Adapter image")
    p = _exists(ip_path, "IP-Adapter", IP_HINT)
    if cv_path is None or str(cv_path).strip() in ("", "none"):
        raise ModelFileError(f"The IP-Adapter {p.name} needs its image encoder: choose a clip_vision file (CLIP ViT-H/14). {CV_HINT}")
    cv = _exists(cv_path, "clip_vision (image encoder)", CV_HINT)
    cache = root.extras.setdefault("ip_adapters", {})
    ip_key, cv_key = file_key(p), file_key(cv)
    with _BUILD_LOCK:
        mods = cache.get(("ip",) + ip_key)
        if mods is None:
            sd = read_ip_adapter(p)
            kind = check_ip_adapter(p.name, sd, root.sd.unet)
        enc = cache.get(("cv",) + cv_key)
        if enc is None:
            from ..models.files import read_shapes

            cfg = encoder_config(cv, read_shapes(cv))
        else:
            cfg = enc[1]
        if mods is None:
            check_encoder_fits(p.name, kind, sd, cv.name, cfg)
            with root.lock:  # the UNet's processors are read while the adapter is built
                mods = build_modules(root.sd.unet, sd, kind, root.home_dtype)
            cache[("ip",) + ip_key] = mods
        else:
            check_encoder_fits(p.name, mods.kind, _proj_shapes(mods), cv.name, cfg)
        if enc is None:
            enc = cache[("cv",) + cv_key] = load_clip_vision(cv, root.home_dtype)
    return IPAdapterSpec(p.name, ip_key, cv_key, mods.kind, rgb, w, s, e)


def _proj_shapes(mods: IPAdapterModules) -> Dict[str, Dict[str, Any]]:
    """The image_proj input widths of built modules, in the file's key names (for check_encoder_fits)."""
    layer = mods.projection.image_projection_layers[0]
    if mods.kind == "plain":
        return {"image_proj": {"proj.weight": layer.image_embeds.weight}}
    if mods.kind == "plus":
        return {"image_proj": {"proj_in.weight": layer.proj_in.weight}}
    return {"image_proj": {"proj.0.weight": layer.ff.net[0].proj.weight}}


def _modules(root: Any, spec: IPAdapterSpec) -> Tuple[IPAdapterModules, Any]:
    cache = root.extras["ip_adapters"]
    return cache[("ip",) + spec.ip_key], cache[("cv",) + spec.cv_key][0]


def modules_of(root: Any, spec: IPAdapterSpec) -> Dict[str, Any]:
    mods, encoder = _modules(root, spec)
    return {"ip_adapter_image_encoder": encoder, "ip_adapter_projection": mods.projection, "ip_adapter_attention": mods.holder}


# ------------------------------------------------------------------ per job

def clip_pixels(rgb: np.ndarray, size: int) -> Any:
    """CLIP preprocessing: shortest side to `size` (bicubic), centre crop, CLIP mean/std; [1,3,size,size] float32."""
    import torch
    from PIL import Image

    from ..imaging.images import to_pil

    img = to_pil(rgb)
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    arr = (arr - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def image_embeds(encoder: Any, kind: str, rgb: np.ndarray) -> Tuple[Any, Any]:
    """(cond, uncond) embeddings, each [1, 1, ...]: plain = projected image embedding (uncond zeros);
    plus/full = the penultimate hidden states (uncond = the zero image's), as diffusers' encode_image."""
    import torch

    p = next(encoder.parameters())
    pixels = clip_pixels(rgb, int(encoder.config.image_size)).to(device=p.device, dtype=p.dtype)
    with torch.no_grad():
        if kind == "plain":
            cond = encoder(pixels).image_embeds
            uncond = torch.zeros_like(cond)
        else:
            cond = encoder(pixels, output_hidden_states=True).hidden_states[-2]
            uncond = encoder(torch.zeros_like(pixels), output_hidden_states=True).hidden_states[-2]
    return cond[None], uncond[None]


def _window_hook(procs: List[Any], spec: IPAdapterSpec, scheduler_of: Any) -> Any:
    """UNet pre-hook: scale = weight inside [start, end] of the executed steps, else 0."""

    def hook(module: Any, args: Any, kwargs: Dict[str, Any]) -> None:
        t = args[1] if len(args) > 1 else kwargs.get("timestep")
        n = int(getattr(scheduler_of, "_num_timesteps", 0) or 0)
        ts = getattr(scheduler_of.scheduler, "timesteps", None)
        if t is None or ts is None or n <= 0:
            return None
        run = [float(x) for x in ts[-n:]]
        tv = float(t.flatten()[0]) if hasattr(t, "flatten") else float(t)
        i = min(range(len(run)), key=lambda j: abs(run[j] - tv))
        on = not (i / n < spec.start or (i + 1) / n > spec.end)
        for proc in procs:
            proc.scale = [spec.weight if on else 0.0] * len(proc.scale)
        return None

    return hook


@contextlib.contextmanager
def installed(root: Any, spec: IPAdapterSpec, unet: Any, scheduler_of: Any, timings: Optional[Dict[str, float]] = None,
              cfg: bool = True) -> Iterator[Dict[str, Any]]:
    """Install the adapter on `unet` for one job and yield `ip_adapter_image_embeds` for the pipeline call
    (`[uncond; cond]` when `cfg`, else cond only); restore the UNet exactly on exit."""
    import torch

    from ..runtime.fallback import stage

    mods, encoder = _modules(root, spec)
    p = next(unet.parameters())
    for m in (encoder, mods.projection, mods.holder):  # normally placed already with the pipeline's modules
        q = next(m.parameters())
        if q.device != p.device or q.dtype != p.dtype:
            m.to(device=p.device, dtype=p.dtype)
    key = (str(p.device), str(p.dtype))
    if key not in spec.embeds:
        with stage("IP-Adapter image embedding", timings, spec.name):
            spec.embeds = {key: image_embeds(encoder, spec.kind, spec.image)}
    cond, uncond = spec.embeds[key]
    saved = dict(unet.attn_processors)
    old_proj, old_type = unet.encoder_hid_proj, unet.config.encoder_hid_dim_type
    procs = [mods.processors[k] for k in saved if k in mods.processors]
    if len(procs) != len(mods.processors):
        raise ModelFileError(f"the IP-Adapter {spec.name} does not fit this UNet's attention layers.")
    for proc in procs:
        proc.scale = [spec.weight] * len(proc.scale)
    handle = None
    try:
        unet.set_attn_processor({k: mods.processors.get(k, v) for k, v in saved.items()})  # (it pops from the dict)
        unet.encoder_hid_proj = mods.projection
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        if (spec.start, spec.end) != (0.0, 1.0):
            handle = unet.register_forward_pre_hook(_window_hook(procs, spec, scheduler_of), with_kwargs=True)
        embeds = torch.cat([uncond, cond]) if cfg else cond
        yield {"ip_adapter_image_embeds": [embeds]}
    finally:
        if handle is not None:
            handle.remove()
        unet.encoder_hid_proj = old_proj  # first: a plus projection has attention layers of its own
        unet.config.encoder_hid_dim_type = old_type
        unet.set_attn_processor(dict(saved))
