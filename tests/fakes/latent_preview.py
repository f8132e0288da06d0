"""Fake ComfyUI `latent_preview`: get_previewer(device, latent_format) returns a previewer that records
the latents it was given (x0) and answers like ComfyUI's, ("JPEG", PIL image, max size). `method` stands
for --preview-method ("auto", "latent2rgb", "taesd" or "none": then no previewer, as in ComfyUI)."""
from __future__ import annotations

method = "auto"
calls: list = []  # (device, latent_format) per get_previewer
decoded: list = []  # the x0 tensors the previewer got


class Previewer:
    def decode_latent_to_preview_image(self, preview_format, x0):
        from PIL import Image

        decoded.append(x0)
        return preview_format, Image.new("RGB", (int(x0.shape[-1]), int(x0.shape[-2]))), 512


def get_previewer(device, latent_format):
    calls.append((device, latent_format))
    return None if method == "none" else Previewer()


def reset():
    global method
    method = "auto"
    calls.clear()
    decoded.clear()
