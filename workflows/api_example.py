"""Run a Z-Realism workflow through ComfyUI's HTTP API and print the fidelity scores.

    python workflows/api_example.py --image my_drawing.png --subject "a knight in silver armour"

The image must be in ComfyUI's input folder (or upload it first: POST /upload/image). Standard library
only; the server must already have the models the graph selects (see the Note in the graph).
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Tuple

HERE = Path(__file__).resolve().parent


def queue(server: str, prompt: Dict[str, Any]) -> str:
    """POST /prompt; raise with ComfyUI's validation errors (HTTP 400) if it rejects the graph."""
    body = json.dumps({"prompt": prompt}).encode()
    req = urllib.request.Request(f"{server}/prompt", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return json.load(r)["prompt_id"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"ComfyUI rejected the prompt: {e.read().decode()}") from None


def wait(server: str, prompt_id: str, timeout_s: float = 3600) -> Dict[str, Any]:
    """Poll GET /history/<id> until the prompt has finished; return its history entry."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with urllib.request.urlopen(f"{server}/history/{prompt_id}") as r:
            entry = json.load(r).get(prompt_id)
        if entry and entry["status"].get("completed") is not None:
            if entry["status"]["status_str"] != "success":
                raise RuntimeError(f"the run failed: {entry['status']['messages']}")
            return entry
        time.sleep(1)
    raise TimeoutError(f"prompt {prompt_id} still running after {timeout_s} s")


def run(server: str, prompt: Dict[str, Any]) -> Tuple[Dict[str, Dict[str, float]], List[str]]:
    """Queue `prompt`, wait, and return ({evaluator node id: scores}, [URLs of the saved files])."""
    entry = wait(server, queue(server, prompt))
    scores, files = {}, []
    for node_id, out in entry["outputs"].items():
        if prompt[node_id]["class_type"] == "ZRealism_FidelityEvaluator":
            scores[node_id] = json.loads(out["text"][-1])["scores"]  # text = [summary, JSON report]
        for f in out.get("images", []):
            if f.get("type") == "output":
                files.append(f"{server}/view?filename={f['filename']}&subfolder={f['subfolder']}&type=output")
    return scores, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="http://127.0.0.1:8188")
    ap.add_argument("--workflow", default=str(HERE / "api" / "zrealism_still.json"))
    ap.add_argument("--image", help="file name in ComfyUI's input folder")
    ap.add_argument("--subject", help="what the character is, e.g. 'a young woman with red hair'")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    prompt = json.loads(Path(args.workflow).read_text())
    for node in prompt.values():  # patch by class, so the same code serves every shipped graph
        inputs = node["inputs"]
        if node["class_type"] == "LoadImage" and args.image and node.get("_meta", {}).get("title") == "Character drawing":
            inputs["image"] = args.image
        if node["class_type"] == "ZRealism_HeuristicAnalyzer" and args.subject:
            inputs["subject"] = args.subject
        if "seed" in inputs and args.seed is not None:
            inputs["seed"] = args.seed
    scores, files = run(args.server, prompt)
    print(json.dumps(scores, indent=2))
    print("\n".join(files))


if __name__ == "__main__":
    main()
