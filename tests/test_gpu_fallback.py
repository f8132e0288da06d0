"""The out-of-memory fallback on a real GPU (skipped without CUDA): with this process's GPU memory capped below
what the tiny models need, a still goes GPU -> out of memory -> model offload -> out of memory -> the CPU in
fp32, and makes its picture. The fallback order itself is tested without a GPU in test_device.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import rand_image, tiny_set  # noqa: F401 (fixtures)
from zrealism_core.engine import load_pipeline, transform

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")


def test_capped_gpu_memory_falls_back_to_the_cpu(tiny_set):
    pipe = load_pipeline(tiny_set.checkpoint, tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cuda",
                         dtype="fp16", config=tiny_set.config, cache=False, fallback=True)
    unet_bytes = sum(p.numel() * p.element_size() for p in pipe.sd.unet.parameters())
    torch.cuda.empty_cache()  # the models are loaded on the CPU: a job moves them to the GPU
    # below the UNet alone (and below the allocator's smallest 2 MiB segment): no attempt on the GPU can fit
    cap = min(unet_bytes // 4, 2**20)
    torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(0).total_memory)
    try:
        r = transform(pipe, rand_image(32, 32, 0), depth_map=rand_image(32, 32, 1), pose_map=rand_image(32, 32, 2),
                      steps=4, denoise=0.5)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert (r.device, r.dtype) == ("cpu", "fp32")
    assert r.fallback == "GPU out of memory: running on the CPU in fp32"
    assert r.image.shape == (32, 32, 3) and np.isfinite(r.image).all()
