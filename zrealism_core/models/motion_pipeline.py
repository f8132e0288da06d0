"""The video pipeline for a clip, assembled from the loaded still pipeline without copying weights.

The motion UNet is built on the meta device and then *assigned* the still UNet's Parameter objects
(`load_state_dict(assign=True)`) and the adapter's motion Parameters, so there is no second copy of the
2D weights (from_pipe / from_unet2d would copy them: +3.4 GB for SD1.5 in fp32). The VAE, text encoder,
tokenizer and ControlNets are the still pipeline's own objects. The pipeline is cached on the adapter,
per still pipeline, and rebuilt when the adapter or a module changes. FreeNoise windows
(set_free_noise) re-point the rebuilt blocks at the shared weights (share_motion_weights).
Used by zrealism_core.animation (the clip stage).
"""
from __future__ import annotations

import logging
import types
import weakref
from typing import Any, Dict, Optional, Tuple

from ..errors import InputError, ModelFileError

log = logging.getLogger("zrealism")

# AnimateDiff's training schedule (the motion modules were trained with linear betas)
ANIMATEDIFF_SCHEDULER_OVERRIDES: Dict[str, Any] = dict(
    beta_schedule="linear", clip_sample=False, timestep_spacing="linspace", steps_offset=1
)


def still_pipeline(pipe: Any) -> Any:
    """The diffusers still pipeline inside a ZRealismPipeline (or a diffusers pipeline itself)."""
    sd = getattr(pipe, "sd", pipe)
    if not hasattr(sd, "unet") or not hasattr(sd, "controlnet"):
        raise InputError("pipe must be a loaded Z-Realism pipeline (load_pipeline) or a diffusers ControlNet img2img pipeline.")
    return sd


def param_device_dtype(module: Any) -> Tuple[Any, Any]:
    p = next(module.parameters())
    return p.device, p.dtype


def build_motion_unet(unet2d: Any, adapter: Any) -> Any:
    """UNetMotionModel whose 2D Parameters ARE `unet2d`'s and whose motion Parameters ARE the adapter's."""
    import torch
    from diffusers import UNetMotionModel

    device, dtype = param_device_dtype(unet2d)
    adapter.to(device=device, dtype=dtype)
    tensors = dict(unet2d.state_dict(keep_vars=True))  # keep_vars: the Parameter objects themselves
    tensors.update(adapter.state_dict(keep_vars=True))
    try:
        with torch.device("meta"):  # structure only: no allocation, no random init
            motion_unet = UNetMotionModel.from_unet2d(unet2d, adapter, load_weights=False)
        motion_unet.load_state_dict(tensors, strict=True, assign=True)
    except (ValueError, RuntimeError) as exc:  # block/layer/channel mismatch
        raise ModelFileError(
            f"the motion model does not fit this checkpoint's UNet ({str(exc).splitlines()[0][:200]}); "
            "use an AnimateDiff motion module made for SD1.5 (e.g. mm_sd_v15_v2.ckpt) with an SD1.5 checkpoint."
        ) from exc
    motion_unet._zrealism_sources = (unet2d, adapter)  # whose Parameters share_motion_weights re-assigns
    return motion_unet.train(False)


def motion_scheduler(sd: Any, name: Optional[str], base_config: Optional[Dict[str, Any]] = None) -> Any:
    """A scheduler of the motion pipeline's own (the still pipeline's is left alone) with the model's
    betas range and AnimateDiff's schedule settings."""
    from .schedulers import make_scheduler

    config = {k: v for k, v in dict(base_config or sd.scheduler.config).items() if not k.startswith("_")}
    config.update(ANIMATEDIFF_SCHEDULER_OVERRIDES)
    return make_scheduler(name or "ddim", config)


def _encode_repeated_once(self: Any, video: Any, generator: Any, decode_chunk_size: int = 16) -> Any:
    """encode_video for a clip of identical frames: encode one frame, repeat its latents. The
    posterior mean is used (no sampling jitter on the still; for trained VAEs the posterior spread
    is tiny anyway, and every frame starts from the same latents)."""
    import torch

    from diffusers.pipelines.animatediff.pipeline_animatediff_video2video_controlnet import retrieve_latents

    if len(video) > 1 and torch.equal(video[0], video[-1]) and bool((video == video[:1]).all()):
        one = retrieve_latents(self.vae.encode(video[:1]), generator=generator, sample_mode="argmax")
        return one.repeat(len(video), 1, 1, 1)
    return type(self).encode_video(self, video, generator, decode_chunk_size)


# The motion pipelines built for an adapter live on the adapter itself, one per still pipeline (weakly keyed):
# they go when either goes. A module-level cache keyed by the still pipeline kept the last adapter alive for as
# long as the still pipeline lived, after ComfyUI had dropped the Motion Loader's output.
_PIPELINES = "_zrealism_motion_pipelines"


def motion_pipeline(pipe: Any, adapter: Any, *, sparsectrl: Any = None) -> Any:
    """The cached video pipeline for (still pipeline, adapter[, SparseCtrl model]), built without
    copying the UNet weights; it lives as long as both the adapter and the still pipeline (see _PIPELINES).
    With `sparsectrl` it is an AnimateDiffSparseControlNetPipeline."""
    from diffusers import AnimateDiffSparseControlNetPipeline, AnimateDiffVideoToVideoControlNetPipeline

    sd = still_pipeline(pipe)
    cache = vars(adapter).setdefault(_PIPELINES, weakref.WeakKeyDictionary())
    key = (id(sparsectrl), id(sd.unet), id(sd.controlnet), id(sd.vae))
    entry = cache.get(sd)
    if entry is not None and entry["key"] == key:
        return entry["pipe"]
    motion_unet = build_motion_unet(sd.unet, adapter)
    common = dict(
        vae=sd.vae, text_encoder=sd.text_encoder, tokenizer=sd.tokenizer, unet=motion_unet,
        motion_adapter=adapter, scheduler=motion_scheduler(sd, None), feature_extractor=None, image_encoder=None,
    )
    if sparsectrl is not None:
        device, dtype = param_device_dtype(sd.unet)
        sparsectrl.to(device=device, dtype=dtype)
        mp = AnimateDiffSparseControlNetPipeline(controlnet=sparsectrl, **common)
    else:
        mp = AnimateDiffVideoToVideoControlNetPipeline(controlnet=sd.controlnet, **common)
        mp.encode_video = types.MethodType(_encode_repeated_once, mp)
    mp.set_progress_bar_config(disable=True)
    cache[sd] = {"key": key, "pipe": mp}  # per (adapter, still pipeline): the last SparseCtrl used
    return mp


def shares_unet_weights(pipe: Any, motion_pipe: Any) -> bool:
    """True when every 2D UNet tensor of the motion pipeline is the still pipeline's own storage."""
    ours = dict(motion_pipe.unet.named_parameters())
    theirs = dict(still_pipeline(pipe).unet.named_parameters())
    return bool(theirs) and all(name in ours and ours[name].data_ptr() == t.data_ptr() for name, t in theirs.items())


def set_free_noise(mp: Any, n_frames: int, window: int, stride: int) -> None:
    """FreeNoise sliding windows only when the clip is longer than the adapter's window."""
    want = n_frames > window
    if not hasattr(mp, "enable_free_noise"):  # the SparseCtrl pipeline has no FreeNoise
        if want:
            raise InputError(
                f"with SparseCtrl a clip can have at most {window} frames (the motion model's window); "
                f"asked for {n_frames}. Lower frames (or loop), or disconnect SparseCtrl to use FreeNoise windows."
            )
        return
    if want:
        stride = max(1, min(int(stride), window // 2))
        current = (getattr(mp, "_free_noise_context_length", None), getattr(mp, "_free_noise_context_stride", None))
        if not mp.free_noise_enabled or current != (window, stride):
            mp.enable_free_noise(context_length=window, context_stride=stride)
            share_motion_weights(mp)
    elif mp.free_noise_enabled:
        mp.disable_free_noise()
        share_motion_weights(mp)


def share_motion_weights(mp: Any) -> int:
    """Point the motion UNet's parameters back at the shared ones after diffusers rebuilt its motion
    blocks: enable_free_noise / disable_free_noise make new transformer blocks and copy the weights into
    them; re-assigning the original Parameter objects (the still UNet's and the adapter's, which ComfyUI's
    patchers track) drops those copies again. Returns how many tensors were re-pointed."""
    sources = getattr(mp.unet, "_zrealism_sources", None)
    if sources is None:
        return 0
    params: Dict[str, Any] = {}
    for module in sources:
        params.update(module.named_parameters())
    state = dict(mp.unet.state_dict(keep_vars=True))  # buffers (positional tables) stay the rebuilt blocks' own
    shared = {k: params[k] for k in state if k in params}
    state.update(shared)
    mp.unet.load_state_dict(state, strict=True, assign=True)
    log.info("zrealism: FreeNoise windows share the motion weights (%d tensors re-pointed, no copies)", len(shared))
    return len(shared)


def run_sparsectrl(mp: Any, still_pil: Any, n: int, strength: float, scale: float, loop: str, common: Dict[str, Any]) -> Any:
    """SparseCtrl RGB keyframe mode (zrealism_core.animation's module doc): the clip from the noised still.

    AnimateDiffSparseControlNetPipeline is text-to-video; to keep the still's strength semantics it
    starts from the noised still: DDIM's timesteps are cut to the last int(steps * strength) ones
    (DDIM's step does not depend on the position in the list, unlike the multistep solvers) and
    the initial latents are the still's latents noised to the first kept timestep.
    """
    import numpy as np
    import torch
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    steps = int(common["num_inference_steps"])
    keep = max(1, int(steps * strength))

    class TailDDIM(DDIMScheduler):
        def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:  # type: ignore[override]
            super().set_timesteps(num_inference_steps, device=device)
            self.timesteps = self.timesteps[-keep:]

    mp.scheduler = TailDDIM.from_config(mp.scheduler.config)
    device, dtype = mp._execution_device, mp.unet.dtype
    generator = common["generator"]
    pixels = torch.from_numpy(np.asarray(still_pil, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
    pixels = pixels.to(device=device, dtype=mp.vae.dtype)
    init = mp.vae.encode(pixels).latent_dist.mode() * mp.vae.config.scaling_factor  # as _encode_repeated_once
    init = init.to(dtype)[:, :, None].repeat(1, 1, n, 1, 1)  # [1, C, frames, h, w]
    mp.scheduler.set_timesteps(steps, device=device)
    noise = randn_tensor(init.shape, generator=generator, device=device, dtype=dtype)
    latents = mp.scheduler.add_noise(init, noise, mp.scheduler.timesteps[:1])
    indices = [0] if loop == "off" or n < 2 else [0, n - 1]  # looping clips end on the still too
    common = {k: v for k, v in common.items() if k != "decode_chunk_size"}  # this pipeline decodes all at once
    return mp(
        conditioning_frames=[still_pil] * len(indices), controlnet_frame_indices=indices, num_frames=n,
        controlnet_conditioning_scale=scale, latents=latents, **common,
    ).frames
