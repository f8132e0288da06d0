"""The VAE decode in channels-last memory layout (a speed lever of the balanced and fast presets).

On a CPU, oneDNN's convolutions can run faster on channels-last tensors: at 512² the decode took 0.865 of its plain
time (benchmarks/bench_vae_decode.py); at 256² the gain is small (bench_still: 0.919 against 0.949 of plain
diffusers' job). The arithmetic is the same up to the order of the sums (largest pixel difference ~1e-5 of the 0..1
range, identical on bench_still's job), so it is off under `quality`, whose output stays bit-identical.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .instance_patch import method_replaced


@contextlib.contextmanager
def channels_last_decode(vae: Any, on: bool) -> Iterator[None]:
    """While active (and `on`), vae.decode runs its decoder in channels-last layout; the layout is put back on exit,
    so the encoder and the next job (quality) see the module as it was."""
    if not on:
        yield
        return
    import torch

    parts = [m for m in (getattr(vae, "post_quant_conv", None), vae.decoder) if m is not None]
    decode = vae.decode

    def decode_cl(z: Any, *args: Any, **kwargs: Any) -> Any:
        return decode(z.contiguous(memory_format=torch.channels_last), *args, **kwargs)

    # each tensor's own strides, put back exactly on exit: `.to(memory_format=contiguous_format)` keeps the
    # channels-last strides of a 1x1 conv's weight (it counts as contiguous), and those make its output channels-last
    tensors = [t for m in parts for t in list(m.parameters()) + list(m.buffers()) if t.dim() == 4]
    strides = [t.stride() for t in tensors]
    for m in parts:
        m.to(memory_format=torch.channels_last)
    try:
        with method_replaced(vae, "decode", decode_cl):
            yield
    finally:
        with torch.no_grad():
            for t, stride in zip(tensors, strides):
                t.data = torch.empty_strided(t.shape, stride, dtype=t.dtype, device=t.device).copy_(t.data)
