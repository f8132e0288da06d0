"""Prompt -> prompt embeddings for SD1.5's CLIP text encoder, with ComfyUI's meaning of a prompt.

What a prompt may hold (the same prompt means the same here and in ComfyUI's CLIP Text Encode):
- weighting: `(red hair:1.3)`, `(red hair)` = x1.1, nesting, `\\(` `\\)` (see weighting.py);
- `embedding:NAME` at the start of the prompt or after a space/newline, also inside brackets
  (`(embedding:film_grain:0.8)`); its vectors take the place of tokens (see embeddings.py). A name
  that is not found is left out of the prompt, as ComfyUI does, with a note in the job's report;
- any length: the tokens are cut into chunks of 75, each wrapped in start/end markers and padded to
  77, and the chunks' encodings are concatenated (ComfyUI / A1111). A weighted run or embedding
  shorter than 8 tokens is not split between two chunks: it moves to the next one whole.

How weights act (ComfyUI's default encoder): each chunk is encoded once as written and the empty
prompt once; a token of weight w ends up at  empty + (token - empty) * w,  per position. Weight
1.0 leaves a token exactly as the plain prompt encodes it.

clip_skip: 1 = the last layer (SD1.5's default), 2 = the penultimate one (ComfyUI's
CLIPSetLastLayer -2), ...; a layer other than the last goes through the final layer norm, as in
ComfyUI and diffusers.

Under CFG the positive and negative embeddings must have the same length: the shorter is repeated
to the least common multiple of the two chunk counts (attention over a repeated sequence gives the
same result, which is what ComfyUI does), or, when that would grow it more than 4x, padded with
empty-prompt chunks (A1111's way), with a note.
"""
from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import InputError
from ..runtime import fallback as runtime
from .embeddings import EmbeddingLibrary
from .tokens import content_ids
from .weighting import parse_weights, unbalanced

CHUNK_TOKENS = 75        # content tokens per chunk; + start and end = CLIP's 77
UNSPLIT_BELOW = 8        # runs shorter than this move to the next chunk whole instead of being split
MAX_REPEAT = 4           # how much longer the lcm may make the shorter prompt before padding instead
EMBEDDING_PREFIX = "embedding:"
_EMBEDDING_SPLIT = re.compile(r"[ \n](?=embedding:)")

Token = Any  # an int token id, or a 1-D tensor (one embedding vector)


@dataclass
class Chunks:
    """A tokenized prompt: chunks of 77 (token, weight) pairs."""

    tokens: List[List[Token]] = field(default_factory=list)
    weights: List[List[float]] = field(default_factory=list)

    @property
    def weighted(self) -> bool:
        return any(w != 1.0 for row in self.weights for w in row)


def _runs(prompt: str, tokenizer: Any, lookup: Callable[[str], Optional[Any]], notes: Optional[List[str]]) -> List[List[Tuple[Token, float]]]:
    """The prompt as runs of (token, weight): one run per weighted text piece and per embedding."""
    runs: List[List[Tuple[Token, float]]] = []
    for segment, weight in parse_weights(prompt):
        pieces = [p for p in _EMBEDDING_SPLIT.split(segment) if p != ""]
        for piece in pieces:
            text = piece
            if piece.startswith(EMBEDDING_PREFIX):
                words = piece[len(EMBEDDING_PREFIX):].strip("\n").split()
                if words:
                    name, rest = words[0], " ".join(words[1:])
                    vectors = lookup(name)
                    stripped = name.rstrip(",")
                    if vectors is None and stripped != name:  # "embedding:name," - the comma is text
                        vectors = lookup(stripped)
                        rest = f"{name[len(stripped):]} {rest}"
                        name = stripped
                    if vectors is None:
                        runtime.note(notes, f"embedding {name!r} was not found; it is left out of the prompt (as ComfyUI does). "
                                            "Put the file in ComfyUI/models/embeddings (or pass --embeddings DIR).")
                    else:
                        runs.append([(vectors[i], weight) for i in range(vectors.shape[0])])
                    if not rest.strip():
                        continue
                    text = rest
            ids = content_ids(text, tokenizer)
            if ids:
                runs.append([(t, weight) for t in ids])
    return runs


def tokenize(prompt: str, tokenizer: Any, lookup: Callable[[str], Optional[Any]] = lambda name: None,
             notes: Optional[List[str]] = None) -> Chunks:
    """Cut the prompt's runs into 77-token chunks (start marker, up to 75 tokens, end marker, padding)."""
    start, end = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end
    problem = unbalanced(prompt)
    if problem:
        runtime.note(notes, f"the prompt has {problem}; unmatched brackets are read as plain text (as ComfyUI does). "
                            "Write \\( or \\) for a literal bracket.")
    out = Chunks()
    row: List[Tuple[Token, float]] = [(start, 1.0)]

    def close(row: List[Tuple[Token, float]]) -> None:
        row = row + [(end, 1.0)]
        row += [(pad, 1.0)] * (CHUNK_TOKENS + 2 - len(row))
        out.tokens.append([t for t, _ in row])
        out.weights.append([w for _, w in row])

    for run in _runs(prompt, tokenizer, lookup, notes):
        splittable = len(run) >= UNSPLIT_BELOW
        while run:
            room = CHUNK_TOKENS + 1 - len(row)
            if len(run) <= room:
                row.extend(run)
                break
            if splittable:
                row.extend(run[:room])
                run = run[room:]
            close(row)
            row = [(start, 1.0)]
    close(row)
    return out


def _encode_chunks(text_encoder: Any, chunks: List[List[Token]], clip_skip: int, device: Any) -> Any:
    """Hidden states (len(chunks), 77, width) of the text encoder; embedding vectors replace the
    token embeddings at their positions (a forward hook, so the shared model is never modified)."""
    import torch

    pad = next((t for row in chunks for t in row if isinstance(t, int)), 0)
    ids = torch.tensor([[t if isinstance(t, int) else pad for t in row] for row in chunks], dtype=torch.long, device=device)
    inserts = [(b, j, t) for b, row in enumerate(chunks) for j, t in enumerate(row) if not isinstance(t, int)]
    handle = None
    if inserts:
        def put_vectors(module: Any, args: Any, output: Any) -> Any:
            output = output.clone()
            for b, j, vec in inserts:
                output[b, j] = vec.to(device=output.device, dtype=output.dtype)
            return output

        handle = text_encoder.get_input_embeddings().register_forward_hook(put_vectors)
    try:
        if clip_skip <= 1:
            return text_encoder(ids)[0]
        out = text_encoder(ids, output_hidden_states=True)
        hidden = out.hidden_states[-clip_skip]
        final_norm = getattr(getattr(text_encoder, "text_model", text_encoder), "final_layer_norm")
        return final_norm(hidden)
    finally:
        if handle is not None:
            handle.remove()


def check_clip_skip(clip_skip: Any, text_encoder: Any = None) -> int:
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 1:
        raise InputError(f"clip_skip must be a whole number of 1 or more (1 = last layer, 2 = penultimate); got {clip_skip!r}.")
    layers = getattr(getattr(text_encoder, "config", None), "num_hidden_layers", None)
    if layers is not None and clip_skip > layers:
        raise InputError(f"clip_skip {clip_skip} is more than the text encoder's {layers} layers; use 1..{layers}.")
    return clip_skip


def encode(text_encoder: Any, tokenizer: Any, prompt: str, *, lookup: Callable[[str], Optional[Any]] = lambda name: None,
           clip_skip: int = 1, device: Any = None, notes: Optional[List[str]] = None) -> Tuple[Any, int]:
    """(embeddings (1, 77 * chunks, width) in the text encoder's dtype, number of chunks) of one prompt."""
    import torch

    clip_skip = check_clip_skip(clip_skip, text_encoder)
    chunks = tokenize(prompt, tokenizer, lookup, notes)
    if device is None:
        device = next(text_encoder.parameters()).device
    rows = list(chunks.tokens)
    if chunks.weighted:
        rows.append([tokenizer.bos_token_id, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * CHUNK_TOKENS)
    with torch.no_grad():
        z = _encode_chunks(text_encoder, rows, clip_skip, device)
        if chunks.weighted:
            dtype = z.dtype
            empty = z[-1:].float()
            w = torch.tensor(chunks.weights, dtype=torch.float32, device=z.device).unsqueeze(-1)
            body = z[:-1].float()
            z = torch.where(w != 1.0, (body - empty) * w + empty, body).to(dtype)
    n = z.shape[0]
    return z.reshape(1, n * z.shape[1], z.shape[2]), n


def match_lengths(pos: Any, n_pos: int, neg: Any, n_neg: int, empty: Callable[[], Any], notes: Optional[List[str]] = None) -> Tuple[Any, Any]:
    """Bring the positive and negative embeddings to the same number of chunks (see the module doc)."""
    import torch

    if n_pos == n_neg:
        return pos, neg
    lcm = math.lcm(n_pos, n_neg)
    if lcm // min(n_pos, n_neg) <= MAX_REPEAT:
        return pos.repeat(1, lcm // n_pos, 1), neg.repeat(1, lcm // n_neg, 1)
    runtime.note(notes, f"the prompt has {n_pos} chunks of 75 tokens and the negative {n_neg}; the shorter one is padded "
                        "with empty chunks to the same length.")
    pad = empty()
    if n_pos < n_neg:
        return torch.cat([pos] + [pad] * (n_neg - n_pos), dim=1), neg
    return pos, torch.cat([neg] + [pad] * (n_pos - n_neg), dim=1)


@dataclass
class TextOptions:
    """How a pipeline reads prompts: clip_skip and the embeddings folders."""

    clip_skip: int = 1
    embedding_dirs: Sequence[Any] = ()
    library: Optional[EmbeddingLibrary] = None

    def lookup(self, width: int = 768) -> Callable[[str], Optional[Any]]:
        """name -> (n, width) vectors or None, from the embeddings folders (files read once)."""
        lib = self.library
        if lib is None or lib.dirs != [str(d) for d in self.embedding_dirs] or lib.width != width:
            lib = self.library = EmbeddingLibrary(self.embedding_dirs, width)
        return lib.get


def prompt_embeds(text_encoder: Any, tokenizer: Any, prompt: str, negative: str, *, cfg: bool,
                  options: Optional[TextOptions] = None, device: Any = None,
                  notes: Optional[List[str]] = None) -> Tuple[Any, Optional[Any]]:
    """(prompt_embeds, negative_prompt_embeds or None without CFG), ready for a diffusers SD1.5 pipeline."""
    options = options or TextOptions()
    lookup = options.lookup(int(text_encoder.get_input_embeddings().weight.shape[-1]))
    kw = dict(lookup=lookup, clip_skip=options.clip_skip, device=device, notes=notes)
    pos, n_pos = encode(text_encoder, tokenizer, prompt or "", **kw)
    if not cfg:
        return pos, None
    neg, n_neg = encode(text_encoder, tokenizer, negative or "", **kw)
    return match_lengths(pos, n_pos, neg, n_neg, lambda: encode(text_encoder, tokenizer, "", **kw)[0], notes)


def pipeline_prompt_embeds(sd: Any, prompt: str, negative: str, *, cfg: float, options: Optional[TextOptions] = None,
                           notes: Optional[List[str]] = None) -> Tuple[Any, Optional[Any]]:
    """prompt_embeds for the diffusers pipeline `sd` on its execution device; CFG runs when cfg > 1
    (diffusers' rule), so at cfg <= 1 there is no negative."""
    device = getattr(sd, "_execution_device", None)
    return prompt_embeds(sd.text_encoder, sd.tokenizer, prompt, negative, cfg=float(cfg) > 1.0, options=options,
                         device=device, notes=notes)


def embeds_kwargs(pipe: Any, pos: Any, neg: Optional[Any]) -> Dict[str, Any]:
    """The prompt arguments for a diffusers call: the embeddings, or, on FreeNoise (which accepts
    only prompt strings), placeholder strings that fixed_prompt_encoding() turns into them."""
    if getattr(pipe, "free_noise_enabled", False):
        return {"prompt": "", "negative_prompt": ""}
    return {"prompt_embeds": pos, "negative_prompt_embeds": neg}


@contextlib.contextmanager
def fixed_prompt_encoding(pipe: Any, pos: Any, neg: Optional[Any]) -> Iterator[None]:
    """While active on a FreeNoise pipeline, its encode_prompt returns `pos`/`neg` (one row per prompt
    it is asked for): diffusers' FreeNoise path encodes per-frame prompt strings itself and refuses
    prompt_embeds. Our prompt is the same on every frame, so every frame gets the same embedding."""
    if not getattr(pipe, "free_noise_enabled", False):
        yield
        return

    def encode_prompt(prompt: Any, device: Any, num_images_per_prompt: int = 1, do_classifier_free_guidance: bool = True,
                      negative_prompt: Any = None, *args: Any, **kwargs: Any) -> Tuple[Any, Optional[Any]]:
        rows = (len(prompt) if isinstance(prompt, list) else 1) * int(num_images_per_prompt)
        p = pos.to(device=device).expand(rows, -1, -1)
        n = neg.to(device=device).expand(rows, -1, -1) if do_classifier_free_guidance and neg is not None else None
        return p, n

    pipe.encode_prompt = encode_prompt  # an instance attribute shadows the method for this job only
    try:
        yield
    finally:
        del pipe.encode_prompt
