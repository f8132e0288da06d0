"""Fake comfy.latent_formats: the SD15 format the bridge hands to latent_preview.get_previewer."""


class SD15:
    latent_channels = 4
    taesd_decoder_name = "taesd_decoder"
