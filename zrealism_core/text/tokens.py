"""CLIP token counting with the real SD1.5 tokenizer shipped in zrealism_core/data/clip-tokenizer/.

SD1.5's text encoder sees at most 77 tokens, start and end markers included; anything after is
silently cut. Prompts we suggest are counted with the same BPE tokenizer so they always fit.
Offline only: the tokenizer is built from the bundled vocab.json/merges.txt, never downloaded.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterable, List, Tuple

from ..data import TOKENIZER_DIR
from ..errors import ModelFileError

CLIP_MAX_TOKENS = 77  # start + 75 content tokens + end


def tokenizer_files() -> Tuple[Path, Path]:
    """(vocab.json, merges.txt) of the bundled tokenizer; ModelFileError if the package is incomplete."""
    vocab, merges = TOKENIZER_DIR / "vocab.json", TOKENIZER_DIR / "merges.txt"
    missing = [str(p) for p in (vocab, merges) if not p.is_file()]
    if missing:
        raise ModelFileError(
            f"CLIP tokenizer files missing: {', '.join(missing)}. Reinstall Z-Realism "
            "(the files ship in zrealism_core/data/clip-tokenizer/)."
        )
    return vocab, merges


@functools.lru_cache(maxsize=1)
def get_tokenizer():
    """The CLIP tokenizer (built once per process; transformers is imported on first use only)."""
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_files()
    return CLIPTokenizer(str(vocab), str(merges), model_max_length=CLIP_MAX_TOKENS)


@functools.lru_cache(maxsize=8192)
def count_tokens(text: str) -> int:
    """Number of CLIP tokens of `text`, start and end markers included (the figure compared to 77).

    Uses the Rust backend of the fast tokenizer directly (same ids as calling the tokenizer, ~3x
    cheaper, no over-length warning); cached, since prompt building counts the same fragments."""
    return len(_ids(get_tokenizer(), text))


def _ids(tok: Any, text: str) -> List[int]:
    """All token ids of `text` (start and end markers included), never truncated or padded.

    The Rust backend is used directly when no call left padding/truncation switched on in it
    (diffusers' encode_prompt pads to 77 through the same tokenizer, and that setting stays)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None and backend.truncation is None and backend.padding is None:
        return list(backend.encode(str(text)).ids)
    return list(tok(str(text), truncation=False, padding=False)["input_ids"])


def content_ids(text: str, tokenizer: Any = None) -> List[int]:
    """Token ids of `text` without the start and end markers, with `tokenizer` (default: the shipped one).

    The prompt encoder uses the pipeline's own tokenizer (a diffusers folder may bring its own);
    never truncated, so long prompts can be split into chunks."""
    return _ids(tokenizer if tokenizer is not None else get_tokenizer(), text)[1:-1]


def fits(text: str, limit: int = CLIP_MAX_TOKENS) -> bool:
    return count_tokens(text) <= limit


def truncate_to_tokens(text: str, limit: int = CLIP_MAX_TOKENS) -> str:
    """The longest prefix of whole words of `text` that fits in `limit` tokens."""
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # binary search on the word count: token counts grow with the prefix
        mid = (lo + hi + 1) // 2
        if count_tokens(" ".join(words[:mid])) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def split_fragments(text: str) -> List[str]:
    """'a, b ,c' -> ['a', 'b', 'c'] with whitespace normalised and empties removed."""
    return [" ".join(part.split()) for part in str(text or "").split(",") if part.strip()]


def join_fragments(
    fragments: Iterable[str], limit: int = CLIP_MAX_TOKENS, required: int = 0
) -> Tuple[str, List[str]]:
    """Comma-join fragments in priority order within `limit` CLIP tokens.

    Repeats (case-insensitive) are dropped. A fragment that would overflow is dropped, except the
    first `required` ones (the user's own words), which are cut to the words that still fit.
    Returns (prompt, fragments dropped or cut).
    """
    kept: List[str] = []
    dropped: List[str] = []
    seen = set()
    for i, frag in enumerate(fragments):
        frag = " ".join(str(frag).split())
        key = frag.lower()
        if not frag or key in seen:
            continue
        seen.add(key)
        if count_tokens(", ".join(kept + [frag])) <= limit:
            kept.append(frag)
            continue
        dropped.append(frag)
        if i < required:
            # budget left for this fragment: the limit minus what the prompt so far plus ", " costs
            words = frag.split()
            lo, hi = 0, len(words)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if count_tokens(", ".join(kept + [" ".join(words[:mid])])) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            if lo:
                kept.append(" ".join(words[:lo]))
    return ", ".join(kept), dropped
