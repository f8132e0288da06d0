"""CLIP token counting with the bundled tokenizer (offline)."""
from __future__ import annotations

from zrealism_core.text import tokens
def test_bundled_files_and_cached_tokenizer():
    vocab, merges = tokens.tokenizer_files()
    assert vocab.stat().st_size > 1_000_000 and merges.stat().st_size > 100_000
    assert tokens.get_tokenizer() is tokens.get_tokenizer()
    assert tokens.get_tokenizer().model_max_length == 77


def test_counts_match_clip_bpe():
    assert tokens.count_tokens("") == 2  # start + end
    # Known SD1.5 ids: "a photo of a cat" -> 5 words, one token each
    ids = tokens.get_tokenizer()("a photo of a cat")["input_ids"]
    assert ids[0] == 49406 and ids[-1] == 49407 and len(ids) == 7
    assert tokens.count_tokens("a photo of a cat") == 7
    # rare words split into several BPE pieces, commas are tokens
    assert tokens.count_tokens("photorealistic") > 2 + 1
    assert tokens.count_tokens("a, b") == 2 + 3


def test_truncate_and_join_within_limit():
    text = " ".join(["beautiful detailed portrait"] * 40)
    cut = tokens.truncate_to_tokens(text, 77)
    assert tokens.count_tokens(cut) <= 77 < tokens.count_tokens(cut + " beautiful")
    prompt, dropped = tokens.join_fragments(["A girl", "photo", "a girl", "Photo", "sharp focus"], 77)
    assert prompt == "A girl, photo, sharp focus" and dropped == []
    many = [f"fragment number {i}" for i in range(60)]
    prompt, dropped = tokens.join_fragments(many, 30)
    assert tokens.count_tokens(prompt) <= 30 and dropped and prompt.startswith("fragment number 0")
    # a required (user) fragment that alone is too long is cut, not dropped
    prompt, dropped = tokens.join_fragments([text, "photo"], 77, required=1)
    assert prompt.startswith("beautiful detailed") and tokens.count_tokens(prompt) <= 77 and "photo" in dropped


def test_split_fragments():
    assert tokens.split_fragments(" a  girl , ,photo ") == ["a girl", "photo"]
    assert tokens.split_fragments("") == []
