"""Progress, previews and Cancel: ComfyUI's ProgressBar, its latent previewer, its interrupt flag."""
from __future__ import annotations

from typing import Any, Callable, Optional

from . import host


def progress_callback(total: int) -> Callable[[int, int], None]:
    """A `callback(step, total)` that drives ComfyUI's ProgressBar (and so its Cancel button).

    Each update runs ComfyUI's global hook, which raises InterruptProcessingException when the
    user pressed Cancel; the core turns that into a clean stop.
    """
    if host.comfy_utils is None:
        return lambda step, total_=total: None
    bar = host.comfy_utils.ProgressBar(total)

    def update(step: int, total_: int = total) -> None:
        bar.update_absolute(step, total_)

    return update


def preview_progress(total: int) -> Optional[Callable[[int, int, Any], None]]:
    """A `preview(step, total, latents)` for engine.transform / animation.animate that updates
    ComfyUI's ProgressBar with a picture made by ComfyUI's own previewer (latent_preview: it follows
    --preview-method and uses TAESD when models/vae_approx has it). A clip's latents [B, 4, F, h, w]
    show their middle frame. None outside ComfyUI. Raises on Cancel, like any update."""
    if host.comfy_utils is None or host.latent_preview is None:
        return None
    torch = host.torch()
    device = host.model_management.get_torch_device() if host.model_management is not None else torch.device("cpu")
    previewer = host.latent_preview.get_previewer(device, host.latent_formats.SD15())  # None for --preview-method none
    bar = host.comfy_utils.ProgressBar(total)

    # the job may have fallen back to the CPU (or run fp16): TAESD stays where it was made, in fp32
    taesd = getattr(previewer, "taesd", None)
    taesd_device = next(taesd.parameters()).device if taesd is not None else None

    def update(step: int, total_: int, latents: Any) -> None:
        picture = None
        if previewer is not None:
            x = latents[:1]
            if x.ndim == 5:  # a clip: its middle frame
                x = x[:, :, x.shape[2] // 2]
            x = x.detach().to(device=taesd_device or x.device, dtype=torch.float32)
            picture = previewer.decode_latent_to_preview_image("JPEG", x)
        bar.update_absolute(step, total_, picture)

    return update


def batch_progress(total: int) -> Callable[[int], dict]:
    """One progress bar for a node's batch of jobs. `for_job(offset)` gives the keyword arguments for
    engine.transform / animation.animate of the job whose steps start at `offset`: a `preview` (progress
    plus ComfyUI's preview picture, see preview_progress) inside ComfyUI, a plain `callback` otherwise."""
    preview = preview_progress(total)
    if preview is not None:
        return lambda offset: {"preview": lambda step, _total, latents: preview(offset + step, total, latents)}
    progress = progress_callback(total)
    return lambda offset: {"callback": lambda step, _total: progress(offset + step, total)}


def cancel_check() -> Optional[Callable[[], bool]]:
    """A `cancel` for the core inside ComfyUI (None outside): checked between detection stages, VAE
    decode chunks and model-file loads; raises ComfyUI's own interrupt exception when the user pressed Cancel."""
    if host.model_management is None:
        return None

    def cancelled() -> bool:
        host.model_management.throw_exception_if_processing_interrupted()
        return False

    return cancelled


def check_interrupted() -> None:
    """Raise ComfyUI's own interrupt exception if the user pressed Cancel (before heavy work)."""
    if host.model_management is not None:
        host.model_management.throw_exception_if_processing_interrupted()
