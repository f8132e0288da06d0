"""The model configs of the test and benchmark models, as plain dicts: the tiny shapes of diffusers' own
pipeline tests, and the real SD1.5 shapes (tiny_models re-exports them all)."""
from __future__ import annotations

from typing import Any, Dict

TINY_UNET_CONFIG: Dict[str, Any] = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32,
    norm_num_groups=32,
)

TINY_CONTROLNET_CONFIG: Dict[str, Any] = dict(
    block_out_channels=(32, 64),
    layers_per_block=2,
    in_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    cross_attention_dim=32,
    conditioning_embedding_out_channels=(16, 32),
    norm_num_groups=32,
)

TINY_VAE_CONFIG: Dict[str, Any] = dict(
    block_out_channels=(32, 64),
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    latent_channels=4,
)

TINY_TEXT_CONFIG: Dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=37,
    num_attention_heads=4,
    num_hidden_layers=2,
    vocab_size=49408,  # the real CLIP vocab (the tokenizer is the real one)
    max_position_embeddings=77,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
    layer_norm_eps=1e-5,
    hidden_act="quick_gelu",
    projection_dim=32,
)

# The real SD1.5 shapes (stable-diffusion-v1-5 configs); the shipped data/sd15 folder and the
# benchmark's random-weight model are made from these.
SD15_UNET_CONFIG: Dict[str, Any] = dict(
    act_fn="silu",
    attention_head_dim=8,
    block_out_channels=(320, 640, 1280, 1280),
    center_input_sample=False,
    cross_attention_dim=768,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    downsample_padding=1,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=4,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-5,
    norm_num_groups=32,
    out_channels=4,
    sample_size=64,
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)

SD15_VAE_CONFIG: Dict[str, Any] = dict(
    act_fn="silu",
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)

# CLIP ViT-L/14 text tower, as in stable-diffusion-v1-5/text_encoder/config.json
SD15_TEXT_CONFIG: Dict[str, Any] = dict(
    architectures=["CLIPTextModel"],
    model_type="clip_text_model",
    attention_dropout=0.0,
    bos_token_id=0,
    dropout=0.0,
    eos_token_id=2,
    hidden_act="quick_gelu",
    hidden_size=768,
    initializer_factor=1.0,
    initializer_range=0.02,
    intermediate_size=3072,
    layer_norm_eps=1e-5,
    max_position_embeddings=77,
    num_attention_heads=12,
    num_hidden_layers=12,
    pad_token_id=1,
    projection_dim=768,
    vocab_size=49408,
)

# SD1.5's scheduler values (DDIM, as in the original release's scheduler_config.json)
SD15_SCHEDULER_CONFIG: Dict[str, Any] = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    num_train_timesteps=1000,
    steps_offset=1,
    prediction_type="epsilon",
    timestep_spacing="leading",
)

TOKENIZER_CONFIG: Dict[str, Any] = {
    # 77, not 8192 (ComfyUI's copy says 8192; prompts would then overflow the position table)
    "model_max_length": 77,
    "tokenizer_class": "CLIPTokenizer",
    "bos_token": "<|startoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "do_lower_case": True,
    "add_prefix_space": False,
    "clean_up_tokenization_spaces": True,
    "errors": "replace",
}
