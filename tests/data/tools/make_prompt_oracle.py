"""Write tests/data/comfyui_prompt_tokens.json: how ComfyUI's own SD1.5 tokenizer reads a set of prompts.

The oracle for zrealism_core.text (weighting, escapes, embeddings, 75-token chunks): for each prompt,
ComfyUI's chunks of 77 (token, weight) pairs, an embedding vector written as "E<name>:<row>".
Run with a ComfyUI checkout (it is not needed to run the tests):

    COMFYUI_DIR=/path/to/ComfyUI python tests/data/tools/make_prompt_oracle.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "comfyui_prompt_tokens.json"
LONG = ", ".join(f"word{i}" for i in range(40))
PROMPTS = [
    "", "a photo of a cat", "a (red:1.5) cat", "(red cat)", "((red cat))", "((red cat):1.5)", "(red:0.5) (blue) ((green))",
    "(a:b) c", "(:1.2) x", "\\(literal\\) (weighted)", "(a", "a)", "a) (b:1.5)", "x (y (z:1.3) w:0.8) v",
    "(a:1.0)", "(a:2) (b:abc) (c:1e-1)", "embedding:three cat", "a embedding:three, b", "(embedding:three:1.2) dog",
    "embedding:three.safetensors", "embedding:sub/two z", "embedding:missing cat", "a,embedding:three",
    "line one\nembedding:two end", LONG, LONG + " (tail words here:1.3)", "(" + LONG + ":0.9)",
    " ".join(["cat"] * 74) + " (red hair:1.2)", " ".join(["cat"] * 70) + " embedding:three dog",
]


def main() -> None:
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        sys.exit("set COMFYUI_DIR to a ComfyUI checkout")
    sys.path.insert(0, comfy_dir)
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import torch
    from safetensors.torch import save_file

    import comfy.sd1_clip as sd1_clip

    vectors = {"three": torch.arange(3 * 768, dtype=torch.float32).reshape(3, 768) / 1000.0,
               "two": -torch.arange(2 * 768, dtype=torch.float32).reshape(2, 768) / 1000.0}
    with tempfile.TemporaryDirectory() as tmp:
        save_file({"emb_params": vectors["three"]}, os.path.join(tmp, "three.safetensors"))
        os.makedirs(os.path.join(tmp, "sub"))
        save_file({"emb_params": vectors["two"]}, os.path.join(tmp, "sub", "two.safetensors"))
        tok = sd1_clip.SDTokenizer(embedding_directory=tmp)

        def name_of(t):
            for name, v in vectors.items():
                for i in range(v.shape[0]):
                    if torch.equal(t, v[i]):
                        return f"E{name}:{i}"
            raise ValueError("unknown vector")

        out = {}
        for prompt in PROMPTS:
            chunks = tok.tokenize_with_weights(prompt)
            out[prompt] = [[[t if isinstance(t, int) else name_of(t), w] for t, w in chunk] for chunk in chunks]
    # one prompt per line, so a change to the oracle reads as a change to that prompt
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in out.items()]
    OUT.write_text('{"comfyui": "0.3.64", "prompts": {\n' + ",\n".join(lines) + "\n}}\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(out)} prompts)")


if __name__ == "__main__":
    main()
