"""The still's encodings kept between jobs: the prompt embeddings and the VAE's encoding of the drawing.

A job on the same drawing or the same prompts as a recent job (a new seed, other ControlNet scales, another
preset: what a user changes most) skips the text encoder and the VAE encoder (issue 20's stage profile: 18%
of a 256² 4-step job on CPU). It is exact: a hit returns what the encoder returned for the same input, so the
picture is bit-identical to an uncached job. ComfyUI's own graph gets the same from its node cache
(CLIPTextEncode and VAEEncode do not run again when only the sampler's inputs change).

- Prompt embeddings: keyed by the prompts, whether the negative is encoded (cfg > 1), the text options
  (clip_skip, embeddings folders), the LoRAs the weights carry (the same LoraFile objects and strengths,
  adapters/views.patched_loras) and the text encoder's module, device and dtype. The notes the encoding
  made (a truncated prompt, an unknown embedding) are repeated on a hit.
- The VAE encoding: the encoder's output (its latent distribution) for the same image tensor (compared by
  its bytes), the same VAE module, device and dtype. diffusers samples the latents from it with the job's
  generator, so the noise drawn is the same as without the cache.

Each pipeline keeps the last MAX_ENTRIES of each in its extras (a few KB each); clear() drops them.
"""
from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..runtime.instance_patch import method_replaced

MAX_ENTRIES = 4
_KEY = "encode_cache"


def _store(pipe: Any) -> "OrderedDict[Any, Any]":
    return pipe.extras.setdefault(_KEY, OrderedDict())


def clear(pipe: Any) -> None:
    pipe.extras.pop(_KEY, None)


def _module_key(module: Any) -> Tuple[int, str, str]:
    p = next(module.parameters())
    return id(module), str(p.device), str(p.dtype)


def _put(store: "OrderedDict[Any, Any]", key: Any, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > MAX_ENTRIES * 2:  # both kinds share the store
        store.popitem(last=False)


def prompt_embeds(pipe: Any, sd: Any, loras: Tuple, encode: Callable[[List[str]], Any], prompt: str, negative: str,
                  cfg: float, notes: Optional[List[str]]) -> Any:
    """encode(notes) (the job's pipeline_prompt_embeds call), or what it returned for the same inputs."""
    opts = pipe.text
    key = ("text", prompt, negative, float(cfg) > 1.0, int(opts.clip_skip), tuple(str(d) for d in opts.embedding_dirs),
           tuple((id(lf), float(s)) for lf, s in loras), _module_key(sd.text_encoder))
    store = _store(pipe)
    hit = store.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[2], (lf for lf, _ in loras))):
        store.move_to_end(key)
        if notes is not None:
            notes.extend(n for n in hit[1] if n not in notes)
        return hit[0]
    made: List[str] = []
    out = encode(made)
    if notes is not None:
        notes.extend(n for n in made if n not in notes)
    _put(store, key, (out, list(made), tuple(lf for lf, _ in loras)))  # the LoraFiles held: their ids stay theirs
    return out


@contextlib.contextmanager
def vae_encodings(pipe: Any, vae: Any) -> Iterator[None]:
    """While active, vae.encode(x) returns the output kept for the same x (an instance attribute over the method)."""
    import torch

    store = _store(pipe)
    encode = vae.encode

    def cached(x: Any, *args: Any, **kwargs: Any) -> Any:
        data = x.detach().to("cpu").contiguous().view(-1).view(torch.uint8)
        digest = hashlib.blake2b(data.numpy().tobytes(), digest_size=16).hexdigest()
        key = ("vae", digest, tuple(x.shape), str(x.dtype), str(x.device), args, tuple(sorted(kwargs.items())), _module_key(vae))
        hit = store.get(key)
        if hit is not None:
            store.move_to_end(key)
            return hit
        out = encode(x, *args, **kwargs)
        _put(store, key, out)
        return out

    with method_replaced(vae, "encode", cached):
        yield
