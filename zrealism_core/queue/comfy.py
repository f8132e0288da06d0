"""The worker's ComfyUI mode (`zrealism worker --comfy URL`): each job runs on a ComfyUI server.

The job's image is uploaded to the server, the API workflow (the shipped workflows/api/zrealism_still
or zrealism_video, or the user's own --workflow) is filled in with the job's options and posted to
/prompt; the worker follows the server's websocket for the states and steps, then downloads the
outputs into the job's folder and writes report.json as `zrealism run` does. N servers, each with one
such worker, serve one queue. Cancel interrupts the server's run.
"""
from __future__ import annotations

import copy
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import CancelledError, InputError, ZRealismError

log = logging.getLogger("zrealism")

SHIPPED = Path(__file__).resolve().parents[2] / "workflows" / "api"  # in a clone / ComfyUI's custom_nodes
UPLOAD_FOLDER = "zrealism_queue"  # under the server's input folder

# our node ids -> the state their execution belongs to (loaders run only when ComfyUI's cache is cold)
NODE_STATES = {
    "ZRealism_ModelLoader": "LOADING_MODELS", "ZRealism_MotionModelLoader": "LOADING_MODELS",
    "ZRealism_LoRALoader": "LOADING_MODELS", "ZRealism_IPAdapter": "LOADING_MODELS",
    "ZRealism_WhiteBackgroundPrep": "ALLOCATING_VRAM", "ZRealism_HeuristicAnalyzer": "ALLOCATING_VRAM",
    "ZRealism_DualControlNetSampler": "SYNTHESIZING", "ZRealism_AnimateDiffFuse": "ANIMATING",
    "ZRealism_FidelityEvaluator": "EVALUATING",
}
# options the shipped graphs cannot express: a graph of your own (--workflow) is the way
UNSUPPORTED = {"loras": "--lora (add a LoRA Loader to your graph)", "ip_adapter": "--ip-adapter (add the IP-Adapter node)",
               "embedding_dirs": "--embeddings (ComfyUI reads models/embeddings itself)",
               "video_format": "--video-format"}


class ComfyError(ZRealismError):
    pass


def _nodes(prompt: Dict[str, Any], cls: str) -> List[str]:
    return [k for k, v in prompt.items() if v.get("class_type") == cls]


def _given(options: Any) -> Dict[str, Any]:
    """The sampler settings the job sets explicitly (as `zrealism run`'s flags)."""
    given = {k: v for k, v in (("steps", options.steps), ("denoise", options.denoise)) if v is not None}
    given.update(options.sampler or {})
    return given


def explicit_replaced(options: Any) -> bool:
    """Whether the job sets a setting that the analyzer's params input would otherwise replace."""
    from ..settings import replaced_settings

    return bool(set(_given(options)) & set(replaced_settings("still")))


def fill_workflow(prompt: Dict[str, Any], options: Any, image_name: str, analysis_params: Any = None) -> Dict[str, Any]:
    """The API workflow with the job's image and options in our nodes' widgets (a copy).

    Settings that the analyzer's params would replace (steps, denoise, cfg, scales, ends) and that the job
    gives explicitly are set with `analysis_params` (the analyzer's recommendation, computed by the caller
    as `zrealism run` does) and the sampler's params link is removed, so the job's values win, as in run."""
    from ..settings import apply_params, replaced_settings
    from ..runner import RunOptions

    p = copy.deepcopy(prompt)
    defaults = RunOptions()
    for field, flag in UNSUPPORTED.items():
        if getattr(options, field) != getattr(defaults, field):
            raise InputError(f"{flag} is not supported by the ComfyUI worker's shipped graph; give the worker "
                             "--workflow with an API workflow of your own that has it.")
    loads = _nodes(p, "LoadImage")
    if len(loads) != 1:
        raise InputError(f"the worker's API workflow must have exactly one Load Image node (it has {len(loads)}).")
    p[loads[0]]["inputs"]["image"] = image_name
    for k in _nodes(p, "ZRealism_WhiteBackgroundPrep"):
        p[k]["inputs"]["long_side"] = int(options.size)
    for k in _nodes(p, "ZRealism_HeuristicAnalyzer"):
        p[k]["inputs"]["subject"] = options.subject or p[k]["inputs"].get("subject", "")
    for k in _nodes(p, "ZRealism_ModelLoader"):
        p[k]["inputs"]["clip_skip"] = int(options.clip_skip)
    given = _given(options)
    for k in _nodes(p, "ZRealism_DualControlNetSampler"):
        inputs = p[k]["inputs"]
        inputs.update(seed=int(options.seed), color_lock=float(options.color_lock), preset=options.preset)
        if options.prompt:
            inputs["prompt"] = options.prompt
        if options.negative:
            inputs["negative"] = options.negative
        if explicit_replaced(options) and isinstance(inputs.get("params"), list):
            widgets = {n: inputs[n] for n in replaced_settings("still") if n in inputs}
            inputs.update(apply_params(widgets, analysis_params))
            del inputs["params"]  # the job's own values win, as with `zrealism run --steps ...`
        unknown = sorted(set(given) - set(inputs))
        if unknown:
            raise InputError(f"the worker's API workflow's sampler has no input {', '.join(unknown)}.")
        inputs.update(given)
    fuses = _nodes(p, "ZRealism_AnimateDiffFuse")
    if options.video and not fuses:
        raise InputError("a --video job needs a workflow with AnimateDiff Fuse (the worker's is a still graph).")
    for k in fuses:
        inputs = p[k]["inputs"]
        inputs.update(seed=int(options.seed), frames=int(options.frames), fps=float(options.fps),
                      strength=float(options.video_strength), loop=options.loop, preset=options.preset)
        if options.video_steps:
            inputs["steps"] = int(options.video_steps)
    return p


def add_preview_outputs(prompt: Dict[str, Any]) -> Dict[str, str]:
    """Preview nodes on what `zrealism run` writes besides the saved still and clip (prepared drawing, maps,
    the sampler's and Fuse's reports), so /history lists them. Returns {output name: node id}."""
    added: Dict[str, str] = {}

    def add(name: str, cls: str, key: str, src: str, index: int) -> None:
        nid = f"zrq_{name}"
        prompt[nid] = {"class_type": cls, "inputs": {key: [src, index]}}
        added[name] = nid

    for k in _nodes(prompt, "ZRealism_WhiteBackgroundPrep")[:1]:
        add("prepped", "PreviewImage", "images", k, 0)
        add("mask", "MaskPreview", "mask", k, 1)
    for k in _nodes(prompt, "ZRealism_DualControlNetSampler")[:1]:
        add("depth", "PreviewImage", "images", k, 1)
        add("pose", "PreviewImage", "images", k, 2)
        add("still_report", "PreviewAny", "source", k, 3)
    for k in _nodes(prompt, "ZRealism_AnimateDiffFuse")[:1]:
        add("video_report", "PreviewAny", "source", k, 2)
    return added


class ComfyServer:
    def __init__(self, base: str, timeout: float = 30) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout

    def _open(self, req: Any) -> Any:
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")[:4000]
            raise ComfyError(f"ComfyUI at {self.base} answered {exc.code}: {body}") from None
        except OSError as exc:
            raise ComfyError(f"ComfyUI is not reachable at {self.base} ({exc}); is the server running?") from None

    def get(self, path: str) -> Any:
        with self._open(self.base + path) as r:
            return json.loads(r.read())

    def get_bytes(self, path: str) -> bytes:
        with self._open(self.base + path) as r:
            return r.read()

    def post(self, path: str, doc: Any) -> Any:
        req = urllib.request.Request(self.base + path, data=json.dumps(doc).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with self._open(req) as r:
            raw = r.read()
            return json.loads(raw) if raw.strip() else None

    def upload(self, data: bytes, name: str, subfolder: str) -> str:
        """POST /upload/image (multipart); returns the Load Image value, subfolder/name."""
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in (("subfolder", subfolder), ("overwrite", "true"), ("type", "input")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        req = urllib.request.Request(self.base + "/upload/image", data=b"".join(parts), method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with self._open(req) as r:
            doc = json.loads(r.read())
        return f"{doc['subfolder']}/{doc['name']}" if doc.get("subfolder") else doc["name"]

    def view(self, item: Dict[str, Any]) -> bytes:
        q = urllib.parse.urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                    "type": item.get("type", "output")})
        return self.get_bytes(f"/view?{q}")


class ComfyExecutor:
    """Runs jobs on one ComfyUI server (the worker's --comfy URL)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.server = ComfyServer(config.comfy)
        self.client_id = f"zrealism-worker-{uuid.uuid4().hex[:8]}"

    @property
    def device(self) -> str:
        return f"ComfyUI at {self.server.base}"

    def needs_loading(self, options: Any) -> bool:
        return False  # ComfyUI loads (and caches) the models: LOADING_MODELS comes from its loader nodes

    def load(self, options: Any) -> None:  # pragma: no cover - never called (needs_loading is False)
        pass

    def workflow(self, options: Any) -> Tuple[str, Dict[str, Any]]:
        path = getattr(self.config, "video_workflow" if options.video else "workflow", None)
        if path is None:
            path = SHIPPED / ("zrealism_video.json" if options.video else "zrealism_still.json")
        path = Path(path)
        if not path.is_file():
            raise InputError(f"API workflow not found: {path} (give the worker --workflow FILE: a graph exported "
                             "with ComfyUI's Export (API), or run it from a clone of this pack)")
        return path.name, json.loads(path.read_text())

    def run(self, path: Path, folder: Path, options: Any, cancel: Callable[[], bool], on_event: Callable[..., None]) -> None:
        from ..imaging.images import load_image

        name, graph = self.workflow(options)
        image = load_image(path)  # a corrupt or empty image fails here with `zrealism run`'s message
        analysis_params = None
        if explicit_replaced(options):
            from ..analysis import analyze
            from ..prep import prepare_white_background

            # the analyzer's recommendation, as `zrealism run` computes it, for the settings the job leaves open
            prep = prepare_white_background(image, long_side=int(options.size or 0))
            analysis_params = analyze(prep.image, prep.mask, subject=options.subject).params
        image_name = self.server.upload(Path(path).read_bytes(), f"{folder.name.lstrip('.')}{Path(path).suffix}", UPLOAD_FOLDER)
        prompt = fill_workflow(graph, options, image_name, analysis_params)
        previews = add_preview_outputs(prompt)
        answer = self.server.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
        if answer.get("node_errors"):
            raise ComfyError(f"ComfyUI rejected the workflow {name}: {json.dumps(answer['node_errors'])[:3000]}")
        prompt_id = answer["prompt_id"]
        self._follow(prompt_id, prompt, cancel, on_event)
        entry = self.server.get(f"/history/{prompt_id}")[prompt_id]
        self._write(entry, prompt, previews, folder, path, options, name, prompt_id)

    def _follow(self, prompt_id: str, prompt: Dict[str, Any], cancel: Callable[[], bool], on_event: Callable[..., None]) -> None:
        """Map the server's websocket messages to our states until the prompt ends."""
        import websocket  # websocket-client, part of the queue extra

        stage_of = {"ALLOCATING_VRAM": "prep", "SYNTHESIZING": "still", "ANIMATING": "video", "EVALUATING": "evaluate",
                    "LOADING_MODELS": "load models"}
        ws = websocket.create_connection(f"{self.server.base.replace('http', 'ws', 1)}/ws?clientId={self.client_id}",
                                         timeout=1.0)
        current: Optional[str] = None
        fuses = set(_nodes(prompt, "ZRealism_AnimateDiffFuse"))
        try:
            while True:
                if cancel():
                    self.server.post("/interrupt", {"prompt_id": prompt_id})
                    self.server.post("/queue", {"delete": [prompt_id]})
                    raise CancelledError("cancelled on the ComfyUI server")
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    if self._finished(prompt_id):
                        return
                    continue
                if not isinstance(raw, str):
                    continue  # previews
                msg = json.loads(raw)
                data = msg.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                kind = msg.get("type")
                if kind == "executing" and data.get("node") is not None:
                    node = prompt.get(str(data["node"]), {})
                    cls = node.get("class_type", "")
                    if cls == "ZRealism_FidelityEvaluator" and fuses and node["inputs"].get("result", [None])[0] not in fuses:
                        continue  # the still's scores, computed before the clip: EVALUATING comes with the clip's
                    current = NODE_STATES.get(cls, current)
                    if current is not None:
                        state = "ALLOCATING_VRAM" if current in ("SYNTHESIZING", "ANIMATING") else current
                        on_event("load models" if state == "LOADING_MODELS" else stage_of[state], 0, 0,
                                 {"node": cls} if state != "LOADING_MODELS" else {})
                elif kind == "progress" and current in ("SYNTHESIZING", "ANIMATING"):
                    on_event(stage_of[current], int(data.get("value", 0)), int(data.get("max", 0)), {})
                elif kind == "execution_error":
                    raise ComfyError(f"ComfyUI: {data.get('node_type', '')}: {data.get('exception_message', '').strip()}")
                elif kind == "execution_interrupted":
                    raise CancelledError("interrupted on the ComfyUI server")
                elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
                    return
        finally:
            ws.close()

    def _finished(self, prompt_id: str) -> bool:
        hist = self.server.get(f"/history/{prompt_id}")
        status = (hist.get(prompt_id) or {}).get("status") or {}
        if status.get("status_str") == "error":
            msgs = [m[1] for m in status.get("messages", []) if m[0] == "execution_error"]
            raise ComfyError(f"ComfyUI: {msgs[0].get('exception_message', '').strip() if msgs else 'the prompt failed'}")
        return bool(status.get("completed"))

    def _write(self, entry: Dict[str, Any], prompt: Dict[str, Any], previews: Dict[str, str], folder: Path,
               path: Path, options: Any, workflow: str, prompt_id: str) -> None:
        from dataclasses import asdict

        outputs = entry.get("outputs", {})
        folder.mkdir(parents=True, exist_ok=True)
        files: Dict[str, str] = {}

        def first(node: str, key: str = "images") -> Optional[Dict[str, Any]]:
            items = outputs.get(node, {}).get(key) or []
            return items[0] if items else None

        def save(item: Optional[Dict[str, Any]], name: str, key: str) -> None:
            if item is not None:
                (folder / name).write_bytes(self.server.view(item))
                files[key] = name

        for key, fname in (("prepped", "prepped.png"), ("mask", "mask.png"), ("depth", "depth.png"), ("pose", "pose.png")):
            save(first(previews[key]) if key in previews else None, fname, key)
        for k in _nodes(prompt, "SaveImage")[:1]:
            save(first(k), "result.png", "result")
        for k in _nodes(prompt, "ZRealism_SaveVideo")[:1]:
            item = first(k)
            if item is not None:
                save(item, "result" + Path(item["filename"]).suffix, "video")
        reports: List[Tuple[str, Dict[str, Any]]] = []
        for k in _nodes(prompt, "ZRealism_FidelityEvaluator"):
            text = outputs.get(k, {}).get("text") or []
            if len(text) >= 2:
                reports.append((k, json.loads(text[1])))
            panel = [n for n, v in prompt.items() if v["class_type"] == "PreviewImage" and v["inputs"].get("images") == [k, 8]]
            if panel and "panel" not in files:
                save(first(panel[0]), "report.png", "panel")
        if "result" not in files or not reports:
            raise ComfyError(f"ComfyUI finished {prompt_id} without a saved still and a Fidelity report "
                             f"(outputs of nodes {sorted(outputs)}); the worker's workflow needs Save Image and "
                             "Fidelity Evaluator")
        still = reports[0][1]
        video = reports[1][1] if len(reports) > 1 else None

        def text_of(name: str) -> Optional[str]:
            t = outputs.get(previews.get(name, ""), {}).get("text") or []
            return t[0] if t else None

        notes = {"still": _note_lines(text_of("still_report")),
                 "video": _note_lines(text_of("video_report")) if options.video else None}
        doc = {"input": str(path), "options": asdict(options), "comfy": {"server": self.server.base, "prompt_id": prompt_id,
                                                                         "workflow": workflow},
               "notes": notes, "still": still, "video": video, "files": files,
               "device": {"device": self.device}, "timings_s": {}}
        tmp = folder / "report.json.part"
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(folder / "report.json")


def _note_lines(report: Optional[str]) -> List[str]:
    """The lines of a node's report that say what was switched off or changed ("... off: ...")."""
    if not report:
        return []
    return [line.strip(" -•") for line in report.splitlines() if " off" in line or "switched" in line]
