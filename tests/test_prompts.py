"""Prompts as ComfyUI reads them: weighting, escapes, embeddings, long prompts, clip_skip (zrealism_core.text).

The token/weight oracle (tests/data/comfyui_prompt_tokens.json) was written by ComfyUI 0.3.64's own
tokenizer (tests/data/tools/make_prompt_oracle.py); the encoder tests run the tiny pipeline.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import ModelFileError
from zrealism_core.engine import load_pipeline, transform
from zrealism_core.testing.tiny_models import clip_tokenizer
from zrealism_core.text import encode as text_encode
from zrealism_core.text.embeddings import EmbeddingLibrary, find_embedding, load_embedding
from zrealism_core.text.encode import TextOptions, pipeline_prompt_embeds, tokenize
from zrealism_core.text.weighting import parse_weights, unbalanced

ORACLE = Path(__file__).resolve().parent / "data" / "comfyui_prompt_tokens.json"
IMG, DEPTH, POSE = rand_image(36, 44, 0), rand_image(36, 44, 1), rand_image(36, 44, 2)


# ------------------------------------------------------------------ parsing (against ComfyUI's own output)

def _oracle_vectors():
    return {"three": torch.arange(3 * 768, dtype=torch.float32).reshape(3, 768) / 1000.0,
            "two": -torch.arange(2 * 768, dtype=torch.float32).reshape(2, 768) / 1000.0}


def _oracle_library(tmp_path):
    from safetensors.torch import save_file

    vecs = _oracle_vectors()
    save_file({"emb_params": vecs["three"]}, str(tmp_path / "three.safetensors"))
    (tmp_path / "sub").mkdir()
    save_file({"emb_params": vecs["two"]}, str(tmp_path / "sub" / "two.safetensors"))
    return EmbeddingLibrary([tmp_path]), vecs


def test_tokens_and_weights_match_comfyui(tmp_path):
    data = json.loads(ORACLE.read_text(encoding="utf-8"))["prompts"]
    assert len(data) >= 25
    lib, vecs = _oracle_library(tmp_path)
    tok = clip_tokenizer()

    def label(t):
        if isinstance(t, int):
            return t
        for name, v in vecs.items():
            for i in range(v.shape[0]):
                if torch.equal(t, v[i]):
                    return f"E{name}:{i}"
        raise AssertionError("a vector that is no embedding row")

    for prompt, want in data.items():
        got = tokenize(prompt, tok, lib.get)
        assert len(got.tokens) == len(want), prompt
        for row_t, row_w, want_row in zip(got.tokens, got.weights, want):
            assert [label(t) for t in row_t] == [t for t, _ in want_row], prompt
            assert all(math.isclose(a, b, rel_tol=1e-12) for a, (_, b) in zip(row_w, want_row)), prompt
    # the oracle covers what the tests below rely on
    assert len(data[", ".join(f"word{i}" for i in range(40))]) == 2
    assert any(isinstance(t, str) for chunk in data["(embedding:three:1.2) dog"] for t, _ in chunk)


def test_weight_syntax():
    assert parse_weights("a (b:1.5) c") == [("a ", 1.0), ("b", 1.5), (" c", 1.0)]
    assert parse_weights("(b)") == [("b", 1.1)]
    assert parse_weights("((b))")[0][1] == pytest.approx(1.21)
    assert parse_weights("((b):1.5)")[0][1] == pytest.approx(1.65)
    assert parse_weights("(b:x)") == [("b:x", 1.1)]          # not a number: the colon is text
    assert parse_weights(r"\(b\)") == [("(b)", 1.0)]          # escaped brackets are text
    assert parse_weights("(a") == [("(a", 1.0)]               # ComfyUI keeps unmatched brackets as text
    assert unbalanced("(a") and unbalanced("a)") and unbalanced("(a))")
    assert unbalanced(r"\(a") is None and unbalanced("(a (b:2))") is None


# ------------------------------------------------------------------ embedding files

def _vec(n, width=768, seed=0):
    return torch.from_numpy(np.random.RandomState(seed).randn(n, width).astype(np.float32))


def test_embedding_formats(tmp_path):
    from safetensors.torch import save_file

    v = _vec(2)
    torch.save({"string_to_param": {"*": v}, "name": "a1111", "step": 10}, tmp_path / "a1111.pt")
    save_file({"emb_params": v}, str(tmp_path / "a1111st.safetensors"))
    torch.save({"<my-token>": v[0]}, tmp_path / "learned_embeds.bin")           # diffusers, one vector
    save_file({"<tok>": v}, str(tmp_path / "diffusers.safetensors"))
    save_file({"clip_l": v, "clip_g": _vec(2, 1280)}, str(tmp_path / "sdxl.safetensors"))
    assert torch.equal(load_embedding(tmp_path / "a1111.pt"), v)
    assert torch.equal(load_embedding(tmp_path / "a1111st.safetensors"), v)
    assert torch.equal(load_embedding(tmp_path / "learned_embeds.bin"), v[:1])
    assert torch.equal(load_embedding(tmp_path / "diffusers.safetensors"), v)
    assert torch.equal(load_embedding(tmp_path / "sdxl.safetensors"), v)         # its clip_l part, as ComfyUI


def test_bad_embedding_files_name_the_file(tmp_path):
    from safetensors.torch import save_file

    save_file({"emb_params": _vec(2, 1024)}, str(tmp_path / "sd2.safetensors"))
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 40)
    torch.save({"emb_params": torch.zeros(3, dtype=torch.long)}, tmp_path / "ints.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    for name, why in (("sd2.safetensors", "SD2"), ("broken.safetensors", "not a valid"),
                      ("ints.pt", "does not hold"), ("text.pt", "could not be read")):
        with pytest.raises(ModelFileError) as err:
            load_embedding(tmp_path / name)
        assert name in str(err.value) and why in str(err.value)


def test_pickled_classes_are_never_unpickled(tmp_path):
    """An old .pt whose pickle needs a class weights_only refuses: only its raw float data is read."""
    v = _vec(3)
    torch.save({"string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(v)})}, tmp_path / "old.pt")
    assert torch.equal(load_embedding(tmp_path / "old.pt"), v)


def test_find_embedding(tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "styles").mkdir()
    save_file({"emb_params": _vec(1)}, str(tmp_path / "styles" / "grain.safetensors"))
    torch.save({"emb_params": _vec(1)}, tmp_path / "neg.pt")
    assert find_embedding("grain", [tmp_path]).name == "grain.safetensors"          # found in a subfolder
    assert find_embedding("styles/grain.safetensors", [tmp_path]).name == "grain.safetensors"
    assert find_embedding("neg", [tmp_path]).name == "neg.pt"
    assert find_embedding("missing", [tmp_path]) is None
    outside = tmp_path.parent / "outside.pt"
    torch.save({"emb_params": _vec(1)}, outside)
    try:
        assert find_embedding("../outside", [tmp_path]) is None                      # never outside the folder
    finally:
        outside.unlink()


# ------------------------------------------------------------------ the encoder in the pipeline

def run(pipe, **kw):
    args = dict(depth_map=DEPTH, pose_map=POSE, steps=4, denoise=0.5, seed=0, prompt="a red cat", negative="blurry")
    args.update(kw)
    return transform(pipe, IMG, **args)


@pytest.fixture
def with_text(tiny_pipe):
    saved = tiny_pipe.text

    def use(**kw):
        tiny_pipe.text = TextOptions(**kw)
        return tiny_pipe

    yield use
    tiny_pipe.text = saved


def test_plain_prompt_encodes_as_diffusers_did(tiny_pipe):
    sd = tiny_pipe.sd
    want_pos, want_neg = sd.encode_prompt("a red cat", torch.device("cpu"), 1, True, "blurry")
    pos, neg = pipeline_prompt_embeds(sd, "a red cat", "blurry", cfg=7.0)
    assert torch.equal(pos, want_pos) and torch.equal(neg, want_neg)
    empty_pos, empty_neg = sd.encode_prompt("", torch.device("cpu"), 1, True, None)
    pos, neg = pipeline_prompt_embeds(sd, "", "", cfg=7.0)
    assert torch.equal(pos, empty_pos) and torch.equal(neg, empty_neg)


def test_weight_changes_output_and_weight_one_is_identical(tiny_pipe):
    plain = run(tiny_pipe, prompt="a red cat")
    assert np.array_equal(plain.image, run(tiny_pipe, prompt="a (red cat:1.0)").image)
    assert np.abs(plain.image - run(tiny_pipe, prompt="a (red cat:1.5)").image).max() > 1e-4


def test_weights_interpolate_from_the_empty_prompt(tiny_pipe):
    sd = tiny_pipe.sd
    plain, _ = pipeline_prompt_embeds(sd, "a red cat", "", cfg=1.0)
    weighted, _ = pipeline_prompt_embeds(sd, "a (red:1.5) cat", "", cfg=1.0)
    empty, _ = pipeline_prompt_embeds(sd, "", "", cfg=1.0)
    # tokens: start, a, red, cat, end...: only position 2 moves, along the line from the empty prompt
    assert torch.equal(weighted[0, [0, 1, 3, 4]], plain[0, [0, 1, 3, 4]])
    torch.testing.assert_close(weighted[0, 2], empty[0, 2] + (plain[0, 2] - empty[0, 2]) * 1.5)


def test_words_after_token_77_count(tiny_pipe):
    words = " ".join(f"cat{i}" for i in range(40))  # well over 75 tokens
    pos, neg = pipeline_prompt_embeds(tiny_pipe.sd, words, "blurry", cfg=7.0)
    assert pos.shape[1] == 154 and neg.shape == pos.shape  # the negative is brought to the same length
    a = run(tiny_pipe, prompt=words + " dog")
    b = run(tiny_pipe, prompt=words + " house")
    assert np.abs(a.image - b.image).max() > 1e-4


def test_negative_padding_beyond_four_times(tiny_pipe):
    words = " ".join(f"cat{i}" for i in range(200))  # 5+ chunks against 1
    notes = []
    pos, neg = pipeline_prompt_embeds(tiny_pipe.sd, words, "blurry", cfg=7.0, notes=notes)
    assert pos.shape == neg.shape and pos.shape[1] % 77 == 0 and pos.shape[1] >= 5 * 77
    assert any("padded" in n for n in notes)


def test_cfg_one_needs_no_negative(tiny_pipe):
    pos, neg = pipeline_prompt_embeds(tiny_pipe.sd, "a cat", "blurry", cfg=1.0)
    assert neg is None and pos.shape[1] == 77


def _tiny_embedding(folder: Path, name: str, width: int, seed: int = 3) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    save_file({"emb_params": _vec(2, width, seed) * 0.5}, str(path))
    return path


def test_embedding_changes_output_and_unknown_one_warns(tiny_pipe, with_text, tmp_path):
    width = tiny_pipe.sd.text_encoder.config.hidden_size
    _tiny_embedding(tmp_path / "emb", "tiny_style", width)
    pipe = with_text(embedding_dirs=[tmp_path / "emb"])
    base = run(pipe, prompt="a red cat")
    styled = run(pipe, prompt="a red cat embedding:tiny_style")
    assert np.abs(base.image - styled.image).max() > 1e-4 and not styled.notes
    assert np.array_equal(run(pipe, prompt="a red cat embedding:tiny_style.safetensors").image, styled.image)
    weighted = run(pipe, prompt="a red cat (embedding:tiny_style:1.4)")
    assert np.abs(weighted.image - styled.image).max() > 1e-5
    unknown = run(pipe, prompt="a red cat", negative="embedding:EasyNegative blurry")
    assert any("EasyNegative" in n and "not found" in n for n in unknown.notes)
    # as in ComfyUI, the unknown name is left out: the same as not writing it
    assert np.array_equal(unknown.image, run(pipe, prompt="a red cat", negative="blurry").image)


def test_embedding_of_the_wrong_width_is_a_clear_error(tiny_pipe, with_text, tmp_path):
    _tiny_embedding(tmp_path, "wide", 1024)
    pipe = with_text(embedding_dirs=[tmp_path])
    with pytest.raises(ModelFileError, match=r"wide\.safetensors.*SD2"):
        run(pipe, prompt="embedding:wide cat")


def test_clip_skip(tiny_pipe, with_text):
    sd = tiny_pipe.sd
    last = run(tiny_pipe)
    pipe = with_text(clip_skip=2)
    skipped = run(pipe)
    assert np.abs(last.image - skipped.image).max() > 1e-4
    pos, _ = pipeline_prompt_embeds(sd, "a red cat", "", cfg=1.0, options=pipe.text)
    ids = sd.tokenizer("a red cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = sd.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(pos, sd.text_encoder.final_layer_norm(hidden))
    with pytest.raises(Exception, match="clip_skip"):
        pipeline_prompt_embeds(sd, "a", "", cfg=1.0, options=TextOptions(clip_skip=99))


def test_load_pipeline_text_options(tiny_set, tmp_path):
    s = tiny_set
    pipe = load_pipeline(s.checkpoint, s.depth_controlnet, s.pose_controlnet, device="cpu", config=s.config,
                         cache=False, clip_skip=2, embedding_dirs=[tmp_path])
    assert pipe.text.clip_skip == 2 and list(pipe.text.embedding_dirs) == [str(tmp_path)]
    with pytest.raises(Exception, match="clip_skip"):
        load_pipeline(s.checkpoint, s.depth_controlnet, s.pose_controlnet, device="cpu", config=s.config,
                      cache=False, clip_skip=0)


def test_chunk_boundary_keeps_short_weighted_runs_whole():
    tok = clip_tokenizer()
    chunks = tokenize(" ".join(["cat"] * 74) + " (red hair:1.2)", tok)
    assert len(chunks.tokens) == 2
    assert chunks.weights[0][1:75] == [1.0] * 74 and chunks.weights[0][75] == 1.0  # end marker, then padding
    assert chunks.weights[1][1:3] == [1.2, 1.2]
    assert text_encode.CHUNK_TOKENS == 75


@pytest.mark.parametrize("frames", [3, 10])  # 10 > the adapter's 8-frame window: FreeNoise's own prompt path
def test_clip_reads_prompts_like_the_still(tiny_pipe, frames):
    from zrealism_core.animation import animate, motion_pipeline
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    adapter = tiny_motion_adapter(max_seq_length=8)
    still = rand_image(16, 16, 4)

    def clip(prompt, negative="blurry"):
        return animate(tiny_pipe, still, motion_adapter=adapter, frames=frames, steps=2, strength=1.0, cfg=3.0, seed=0,
                       depth_map=still, pose_map=still, color_lock=0.0, prompt=prompt, negative=negative)

    plain = clip("a red cat")
    assert motion_pipeline(tiny_pipe, adapter).free_noise_enabled == (frames > 8)
    assert all(np.array_equal(a, b) for a, b in zip(plain, clip("a (red cat:1.0)")))
    assert max(np.abs(a - b).max() for a, b in zip(plain, clip("a (red cat:1.5)"))) > 1e-4
    words = " ".join(f"cat{i}" for i in range(40))
    assert max(np.abs(a - b).max() for a, b in zip(clip(words + " dog"), clip(words + " house"))) > 1e-4
    assert "encode_prompt" not in vars(motion_pipeline(tiny_pipe, adapter))  # FreeNoise's stand-in is removed


def test_token_ids_ignore_padding_left_on_by_diffusers():
    from zrealism_core.text.tokens import content_ids

    tok = clip_tokenizer()
    want = content_ids("a red cat", tok)
    for kw in ({"truncation": True}, {}):  # what diffusers' encode_prompt and a plain padded call leave behind
        tok("x", padding="max_length", max_length=77, **kw)
        assert content_ids("a red cat", tok) == want and len(want) == 3
    assert len(tokenize("a red cat", tok).tokens) == 1


def test_cli_embeddings_and_clip_skip(tiny_set, tmp_path):
    from zrealism_core.cli import main
    from zrealism_core.imaging.images import load_image, save_image

    s = tiny_set
    save_image(IMG, tmp_path / "in.png")
    save_image(DEPTH, tmp_path / "depth.png")
    save_image(POSE, tmp_path / "pose.png")
    _tiny_embedding(tmp_path / "emb", "tiny_style", 32)

    def cli(out, *extra):
        rc = main(["transform", str(tmp_path / "in.png"), "-o", str(tmp_path / out), "--checkpoint", str(s.checkpoint),
                   "--config", str(s.config), "--depth-controlnet", str(s.depth_controlnet), "--pose-controlnet",
                   str(s.pose_controlnet), "--device", "cpu", "--steps", "4", "--denoise", "0.5", "-q",
                   "--depth-map", str(tmp_path / "depth.png"), "--pose-map", str(tmp_path / "pose.png"), *extra])
        assert rc == 0
        return load_image(tmp_path / out)

    plain = cli("plain.png", "--prompt", "a cat")
    styled = cli("styled.png", "--prompt", "a cat embedding:tiny_style", "--embeddings", str(tmp_path / "emb"))
    skipped = cli("skip.png", "--prompt", "a cat", "--clip-skip", "2")
    assert np.abs(plain - styled).max() > 1e-3 and np.abs(plain - skipped).max() > 1e-3
    assert np.array_equal(plain, cli("plain2.png", "--prompt", "a cat"))  # the options do not stick to the cached pipe
