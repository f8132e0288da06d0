"""Generate the shipped workflows (UI graph + API twin) from compact descriptions.

    python workflows/build.py            # rewrite workflows/*.json and workflows/api/*.json
    python workflows/build.py --check    # exit 1 if a file on disk differs from what would be written

Why generate instead of hand-editing: UI `widgets_values` are positional (the order of the widget
inputs in INPUT_TYPES, plus an extra "control_after_generate" value after every seed), so a renamed
or added node input silently shifts every value after it. Rebuilding from our nodes' INPUT_TYPES
(read in-process, the way ComfyUI's /object_info builds them) keeps the files in step.

Core ComfyUI node definitions come from tests/data/comfyui_object_info.json (the core nodes our
graphs use, reduced from ComfyUI 0.3.64's /object_info to types, input names, defaults, options and
outputs; refresh it with `--core-from DUMP`); ours from the pack's NODE_CLASS_MAPPINGS.

    python workflows/build.py --core-from object_info.json   # rewrite tests/data/comfyui_object_info.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORE_OBJECT_INFO = REPO / "tests" / "data" / "comfyui_object_info.json"
# Core nodes kept in CORE_OBJECT_INFO: those the shipped graphs and the tests use, plus the ones a
# native-sampler graph (checkpoint + LoRA + ControlNet + KSampler) needs.
CORE_NODES = (
    "LoadImage", "SaveImage", "PreviewImage", "PreviewAny", "ImageScale",
    "CheckpointLoaderSimple", "LoraLoader", "VAELoader", "CLIPTextEncode", "ControlNetLoader",
    "ControlNetApplyAdvanced", "VAEEncode", "VAEDecode", "EmptyLatentImage", "KSampler",
)
# What a node definition keeps: enough to place widgets, check values and links, and title nodes.
CORE_KEYS = ("input", "input_order", "output", "output_is_list", "output_name", "name", "display_name",
             "output_node")
PACK_NAME = "zrealism_pack"
COMFYUI_VERSION = "0.3.64"
FRONTEND_VERSION = "1.27.10"

# Input types the frontend draws as widgets (everything else is a link-only socket).
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


# ------------------------------------------------------------------ node definitions

def load_pack():
    """Import the repo root as a package, as ComfyUI does (same helper as tests/conftest.py)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


def node_info(name: str, cls: type, display_names: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The /object_info entry of a classic (V1) node class: a port of ComfyUI 0.3.64 server.node_info."""
    inputs = cls.INPUT_TYPES()
    info: Dict[str, Any] = {
        "input": inputs,
        "input_order": {key: list(value.keys()) for key, value in inputs.items()},
        "output": list(cls.RETURN_TYPES),
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES))),
        "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
        "name": name,
        "display_name": (display_names or {}).get(name, name),
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": "custom_nodes.z-realism",
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    return info


def pack_object_info(pack=None) -> Dict[str, Dict[str, Any]]:
    pack = pack or load_pack()
    names = getattr(pack, "NODE_DISPLAY_NAME_MAPPINGS", {})
    return {n: node_info(n, c, names) for n, c in pack.NODE_CLASS_MAPPINGS.items()}


def reduce_core(full: Dict[str, Dict[str, Any]], names: Sequence[str] = CORE_NODES) -> Dict[str, Dict[str, Any]]:
    """The facts of `names` in an /object_info dump: types, input names, defaults, options, outputs
    (no descriptions or tooltips)."""
    missing = [n for n in names if n not in full]
    if missing:
        raise KeyError(f"not in the dump: {missing}")
    reduced = {}
    for name in names:
        info = {k: full[name][k] for k in CORE_KEYS if k in full[name]}
        info["input"] = {
            section: {inp: [spec[0], *[{k: v for k, v in opts.items() if k != "tooltip"} for opts in spec[1:2]
                                        if isinstance(opts, dict)]]
                      for inp, spec in specs.items()}
            for section, specs in full[name]["input"].items() if section != "hidden"
        }
        reduced[name] = info
    return reduced


def object_info(pack=None, core_path: Path = CORE_OBJECT_INFO) -> Dict[str, Dict[str, Any]]:
    """Core definitions (tests/data/comfyui_object_info.json) plus ours."""
    defs: Dict[str, Dict[str, Any]] = {}
    if Path(core_path).is_file():
        defs.update(json.loads(Path(core_path).read_text()))
    defs.update(pack_object_info(pack))
    return defs


def input_kind(spec: Sequence[Any]) -> str:
    """'COMBO' for a list of choices (or the V3 "COMBO" type), else the type name."""
    t = spec[0]
    if isinstance(t, (list, tuple)):
        return "COMBO"
    return str(t)


def input_options(spec: Sequence[Any]) -> Dict[str, Any]:
    return dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}


def combo_choices(spec: Sequence[Any]) -> List[Any]:
    t = spec[0]
    if isinstance(t, (list, tuple)):
        return list(t)
    return list(input_options(spec).get("options", []))


def is_widget(spec: Sequence[Any]) -> bool:
    return input_kind(spec) in WIDGET_TYPES and not input_options(spec).get("forceInput", False)


def has_seed_control(name: str, spec: Sequence[Any]) -> bool:
    """The frontend adds a "control after generate" widget to INT inputs that ask for it, and (legacy
    convention) to every INT named seed / noise_seed unless the flag is explicitly false."""
    if input_kind(spec) != "INT":
        return False
    flag = input_options(spec).get("control_after_generate")
    return bool(flag) if flag is not None else name in ("seed", "noise_seed")


def ordered_inputs(info: Dict[str, Any]) -> List[Tuple[str, Sequence[Any], bool]]:
    """(name, spec, required) for required then optional inputs, in INPUT_TYPES order (hidden skipped)."""
    out = []
    for section in ("required", "optional"):
        for name in info.get("input_order", {}).get(section, list(info["input"].get(section, {}))):
            out.append((name, info["input"][section][name], section == "required"))
    return out


def default_value(spec: Sequence[Any]) -> Any:
    opts = input_options(spec)
    if "default" in opts:
        return opts["default"]
    kind = input_kind(spec)
    if kind == "COMBO":
        choices = combo_choices(spec)
        return choices[0] if choices else ""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


# ------------------------------------------------------------------ compact descriptions

Source = Tuple[int, Union[int, str]]  # (node id, output index or output name)


@dataclass
class Model:
    """A `models[]` entry: lets the editor tell users what to download and where it goes."""

    name: str
    url: str
    directory: str

    def as_dict(self) -> Dict[str, str]:
        return {"name": self.name, "url": self.url, "directory": self.directory}


@dataclass
class Node:
    id: int
    type: str
    pos: Tuple[float, float]
    links: Dict[str, Source] = field(default_factory=dict)  # input name -> source
    widgets: Dict[str, Any] = field(default_factory=dict)  # overrides of the defaults
    title: Optional[str] = None
    models: List[Model] = field(default_factory=list)
    width: float = 320
    height: float = 0  # 0 = estimated (notes: 220)
    text: str = ""  # body of a Note / MarkdownNote
    seed_control: str = "fixed"  # shipped graphs reproduce exactly; users switch to randomize


@dataclass
class Workflow:
    name: str
    nodes: List[Node]
    groups: List[Dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------ UI + API generation

def _node_size(info: Dict[str, Any], n_inputs: int, n_outputs: int, widgets: List[Tuple[str, Any]], width: float,
               preview: bool = False) -> List[float]:
    """Roughly what LiteGraph's computeSize gives; the editor grows a node that is too small."""
    h = 30 + 22 * max(n_inputs, n_outputs, 0) + (220 if preview else 0)
    for name, spec in widgets:
        multiline = input_kind(spec) == "STRING" and input_options(spec).get("multiline")
        h += 88 if multiline else 24
    return [float(width), float(max(h, 60))]


def _resolve_output(defs: Dict[str, Dict[str, Any]], nodes: Dict[int, Node], src: Source) -> Tuple[int, int, str]:
    node_id, out = src
    info = defs[nodes[node_id].type]
    names = list(info["output_name"])
    index = names.index(out) if isinstance(out, str) else int(out)
    return node_id, index, str(info["output"][index])


def _topological_order(wf: Workflow) -> List[int]:
    deps = {n.id: {src[0] for src in n.links.values()} for n in wf.nodes}
    order: List[int] = []
    while len(order) < len(deps):
        ready = sorted(i for i, d in deps.items() if i not in order and d <= set(order))
        if not ready:
            raise ValueError(f"{wf.name}: the graph has a cycle")
        order.extend(ready)
    return order


def build(wf: Workflow, defs: Dict[str, Dict[str, Any]]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(UI graph, API prompt) for one workflow description."""
    by_id = {n.id: n for n in wf.nodes}
    order = _topological_order(wf)
    links: List[list] = []
    outputs_links: Dict[Tuple[int, int], List[int]] = {}
    ui_nodes: List[Dict[str, Any]] = []
    api: Dict[str, Any] = {}
    models: List[Dict[str, str]] = []

    for node in wf.nodes:
        if node.type in ("Note", "MarkdownNote"):
            ui_nodes.append({
                "id": node.id, "type": node.type, "pos": list(node.pos), "size": [node.width, float(node.height or 220)],
                "flags": {}, "order": order.index(node.id), "mode": 0, "inputs": [], "outputs": [],
                "properties": {}, "widgets_values": [node.text],
                "color": "#432", "bgcolor": "#653",
            })
            continue
        if node.type not in defs:
            raise KeyError(f"{wf.name}: node type {node.type!r} is not defined (is its module registered?)")
        info = defs[node.type]
        unknown = (set(node.links) | set(node.widgets)) - {n for n, _, _ in ordered_inputs(info)}
        if unknown:
            raise KeyError(f"{wf.name}: {node.type} has no input(s) {sorted(unknown)}")
        # The editor lists link sockets first, then one socket per widget (frontend 1.27); a link's
        # target_slot indexes that combined list.
        params = ordered_inputs(info)
        sockets = [(n, s) for n, s, _ in params if not is_widget(s)] + [(n, s) for n, s, _ in params if is_widget(s)]
        ui_inputs: List[Dict[str, Any]] = []
        widget_specs: List[Tuple[str, Any]] = []
        widgets_values: List[Any] = []
        api_inputs: Dict[str, Any] = {}
        for slot, (name, spec) in enumerate(sockets):
            entry: Dict[str, Any] = {"localized_name": name, "name": name, "type": input_kind(spec)}
            if is_widget(spec):
                entry["widget"] = {"name": name}
            entry["link"] = None
            if name in node.links:
                src_id, src_slot, src_type = _resolve_output(defs, by_id, node.links[name])
                link_id = len(links) + 1
                entry["link"] = link_id
                links.append([link_id, src_id, src_slot, node.id, slot, src_type])
                outputs_links.setdefault((src_id, src_slot), []).append(link_id)
                api_inputs[name] = [str(src_id), src_slot]
            ui_inputs.append(entry)
        for name, spec, _required in params:
            if not is_widget(spec):
                continue
            # a widget input driven by a link keeps its (unused) widget value in the UI file
            value = node.widgets.get(name, default_value(spec))
            widget_specs.append((name, spec))
            widgets_values.append(value)
            if has_seed_control(name, spec):
                widgets_values.append(node.seed_control)
            if input_options(spec).get("image_upload"):
                widgets_values.append("image")  # the upload button's own (serialised) value
                ui_inputs.append({"localized_name": "choose file to upload", "name": "upload",
                                  "type": "IMAGEUPLOAD", "widget": {"name": "upload"}, "link": None})
            if name not in node.links:
                api_inputs[name] = value
        ui_outputs = []
        for i, (oname, otype) in enumerate(zip(info["output_name"], info["output"])):
            ui_outputs.append({"localized_name": oname, "name": oname, "type": otype,
                               "links": outputs_links.get((node.id, i), [])})
        properties: Dict[str, Any] = {"Node name for S&R": node.type}
        if not node.type.startswith("ZRealism_"):
            properties.update(cnr_id="comfy-core", ver=COMFYUI_VERSION)
        if node.models:
            properties["models"] = [m.as_dict() for m in node.models]
            models.extend(m.as_dict() for m in node.models)
        ui_node = {
            "id": node.id, "type": node.type, "pos": [float(node.pos[0]), float(node.pos[1])],
            "size": _node_size(info, sum("widget" not in e for e in ui_inputs), len(ui_outputs), widget_specs, node.width,
                               preview=node.type in ("LoadImage", "SaveImage", "PreviewImage")),
            "flags": {}, "order": order.index(node.id), "mode": 0,
            "inputs": ui_inputs, "outputs": ui_outputs, "properties": properties,
            "widgets_values": widgets_values,
        }
        if node.title:
            ui_node["title"] = node.title
        ui_nodes.append(ui_node)
        api[str(node.id)] = {"inputs": api_inputs, "class_type": node.type,
                             "_meta": {"title": node.title or info.get("display_name", node.type)}}

    # outputs' link lists are only complete once every consumer is placed
    for ui_node in ui_nodes:
        for i, out in enumerate(ui_node.get("outputs", [])):
            out["links"] = outputs_links.get((ui_node["id"], i), [])
            if out["links"]:
                out["slot_index"] = i

    ui = {
        "id": _stable_uuid(wf.name),
        "revision": 0,
        "last_node_id": max(n.id for n in wf.nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": wf.groups,
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [40.0, 60.0]}, "frontendVersion": FRONTEND_VERSION},
        "version": 0.4,
    }
    if models:
        unique = {m["name"]: m for m in models}
        ui["models"] = list(unique.values())
    return ui, api


def _stable_uuid(name: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"z-realism/workflows/{name}"))


# ------------------------------------------------------------------ the shipped workflows

# Model files the graphs select by default: widget value = `name`, so the editor's missing-models
# dialog can name the file, its folder and its download (the editor only offers .safetensors
# downloads itself; the motion module is a .ckpt, which our loader reads without unpickling).
BASE = Model("v1-5-pruned-emaonly.safetensors",
             "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors",
             "checkpoints")
DEPTH = Model("control_v11f1p_sd15_depth_fp16.safetensors",
              "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11f1p_sd15_depth_fp16.safetensors",
              "controlnet")
POSE = Model("control_v11p_sd15_openpose_fp16.safetensors",
             "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11p_sd15_openpose_fp16.safetensors",
             "controlnet")
LINEART = Model("control_v11p_sd15_lineart_fp16.safetensors",
                "https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/control_v11p_sd15_lineart_fp16.safetensors",
                "controlnet")
MOTION = Model("mm_sd_v15_v2.ckpt", "https://huggingface.co/guoyww/animatediff/resolve/main/mm_sd_v15_v2.ckpt",
               "animatediff_models")

SUBJECT = "a young woman in a pink dress"
NATIVE_LORA = "realism_lora_sd15.safetensors"  # a placeholder the user replaces (the native graph's LoRA is off: strength 0)
NOTE_MODELS = """Z-Realism: drawing -> photo (SD1.5 img2img + depth and OpenPose ControlNets)

Models (ComfyUI/models/...):
- checkpoints/v1-5-pruned-emaonly.safetensors (or any SD1.5 fine-tune, or a diffusers folder in models/diffusers)
- controlnet/control_v11f1p_sd15_depth_fp16.safetensors
- controlnet/control_v11p_sd15_openpose_fp16.safetensors
{extra}- zrealism_annotators/: Depth Anything V2 Small (folder Depth-Anything-V2-Small-hf) and the OpenPose file \
body_pose_model.pth (OpenPose body; hands and face are not drawn) (or install comfyui_controlnet_aux, whose ckpts are found too)

Use: load a character drawing (a flat background is removed; PNG transparency is used), set the subject on \
Heuristic Analyzer, queue. The analyzer's params replace the sampler's steps/cfg/denoise/scales; disconnect \
params to set them by hand. Fidelity Evaluator scores the result against the drawing (0..1, higher is better)."""


def _loader(node_id: int, pos: Tuple[float, float]) -> Node:
    return Node(node_id, "ZRealism_ModelLoader", pos, models=[BASE, DEPTH, POSE],
                widgets={"checkpoint": BASE.name, "depth_controlnet": DEPTH.name, "pose_controlnet": POSE.name})


def _still_core(image: Source, sampler_links: Dict[str, Source], x0: float = 0.0) -> List[Node]:
    """Prep -> analyze -> load -> sample -> evaluate + save, fed by `image` (ids 2-9)."""
    return [
        Node(2, "ZRealism_WhiteBackgroundPrep", (x0 + 380, 0), widgets={"long_side": 512},
             links={"image": image, "mask": (image[0], "MASK")}),
        Node(3, "ZRealism_HeuristicAnalyzer", (x0 + 760, 0), widgets={"subject": SUBJECT},
             links={"image": (2, "image"), "mask": (2, "mask")}),
        Node(4, "PreviewAny", (x0 + 760, 330), title="Analyzer report", links={"source": (3, "report")}, width=320),
        _loader(5, (x0 + 760, 520)),
        Node(6, "ZRealism_DualControlNetSampler", (x0 + 1140, 0), widgets={"seed": 42}, width=340,
             links={"pipe": (5, "pipe"), "image": (2, "image"), "mask": (2, "mask"), "params": (3, "params"),
                    "prompt": (3, "positive"), "negative": (3, "negative"), **sampler_links}),
        Node(7, "SaveImage", (x0 + 1540, 0), widgets={"filename_prefix": "ZRealism/still"},
             links={"images": (6, "image")}),
        Node(8, "ZRealism_FidelityEvaluator", (x0 + 1540, 420),  # the sampler's maps: control scores without re-detecting
             links={"source": (2, "image"), "result": (6, "image"), "mask": (2, "mask"),
                    "depth_map": (6, "depth_map"), "pose_map": (6, "pose_map")}),
        Node(9, "PreviewImage", (x0 + 1920, 420), title="Fidelity panel", links={"images": (8, "panel")}),
    ]


def workflows() -> List[Workflow]:
    still = Workflow("zrealism_still", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *_still_core((1, "IMAGE"), {}),
        Node(10, "Note", (0, 420), width=700, text=NOTE_MODELS.format(extra="")),
    ])
    custom = Workflow("zrealism_custom_maps", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        Node(11, "LoadImage", (0, 400), title="Depth map (white = near)", widgets={"image": "depth_map.png"}),
        Node(12, "LoadImage", (0, 760), title="OpenPose map", widgets={"image": "pose_map.png"}),
        *_still_core((1, "IMAGE"), {"depth_map": (11, "IMAGE"), "pose_map": (12, "IMAGE")}),
        Node(10, "Note", (380, 420), width=340, height=620, text=(
            "Custom maps: the depth and OpenPose maps come from you instead of the built-in detectors, e.g. from "
            "comfyui_controlnet_aux (Depth Anything / MiDaS, DWPose / OpenPose): replace the two Load Image nodes "
            "with those preprocessors, fed by the White Background Prep image. One map serves every image of a "
            "batch, or give one per image; maps are resized to the image.\n\n" + NOTE_MODELS.format(extra=""))),
    ])
    video = Workflow("zrealism_video", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *_still_core((1, "IMAGE"), {}),
        Node(10, "Note", (0, 420), width=700, height=330, text=NOTE_MODELS.format(
            extra="- animatediff_models/mm_sd_v15_v2.ckpt (AnimateDiff motion module; v3_sd15_mm.ckpt works too)\n")
            + "\n\nVideo: AnimateDiff Fuse animates the still (strength = how far frames may move from it), guided by "
              "the still's own depth and pose maps, colours locked to the still. Fidelity Evaluator (bottom) scores the "
              "frames against the drawing, plus temporal consistency."),
        Node(13, "ZRealism_MotionModelLoader", (760, 900), models=[MOTION], widgets={"motion_model": MOTION.name}),
        Node(14, "ZRealism_AnimateDiffFuse", (1140, 900), widgets={"seed": 42}, width=340,
             links={"pipe": (5, "pipe"), "motion": (13, "motion"), "still": (6, "image"),
                    "prompt": (3, "positive"), "negative": (3, "negative"), "depth_map": (6, "depth_map"),
                    "pose_map": (6, "pose_map"), "mask": (2, "mask"), "params": (3, "params")}),
        Node(15, "ZRealism_SaveVideo", (1540, 900), widgets={"filename_prefix": "ZRealism/clip"},
             links={"frames": (14, "frames"), "fps": (14, "fps")}),
        Node(16, "ZRealism_FidelityEvaluator", (1540, 1320), title="Fidelity Evaluator (clip)",
             links={"source": (2, "image"), "result": (14, "frames"), "mask": (2, "mask"),
                    "depth_map": (6, "depth_map"), "pose_map": (6, "pose_map")}),
        Node(17, "PreviewImage", (1920, 1320), title="Fidelity panel (clip)", links={"images": (16, "panel")}),
    ])
    detail_core = _still_core((1, "IMAGE"), {})
    for node in detail_core:
        if node.id == 5:  # the loader gets the optional detail net
            node.models = node.models + [LINEART]
            node.widgets["detail_controlnet"] = LINEART.name
        elif node.id == 6:  # the sampler uses it for the first 80% of the steps; auto = lineart from the file name
            node.widgets.update(detail_scale=0.55, detail_end=0.8, detail_hint="auto")
    detail = Workflow("zrealism_still_detail", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        *detail_core,
        Node(10, "Note", (0, 420), width=700, height=380, text=NOTE_MODELS.format(
            extra=f"- controlnet/{LINEART.name} (the detail ControlNet; control_v11f1e_sd15_tile, "
                  "control_v11p_sd15s2_lineart_anime or control_v11p_sd15_canny work too)\n")
            + "\n\nDetail: a third ControlNet keeps the drawing's own line art. Its hint is computed without any model "
              "(detail_hint auto = from the file name: lineart -> the drawing's dark strokes as thin white lines; tile -> "
              "the image itself, keeps layout and colours; canny -> edges). The analyzer's params set detail_scale "
              "(0 for photos); detail_end 0.8 leaves the last steps free for photo texture. The evaluator reports "
              "control fidelity (edge_f, depth_corr, pose_pck) in its JSON."),
    ])
    native = Workflow("zrealism_still_native", [
        Node(1, "LoadImage", (0, 0), title="Character drawing", widgets={"image": "example.png"}),
        Node(2, "ZRealism_WhiteBackgroundPrep", (380, 0), widgets={"long_side": 512},
             links={"image": (1, "IMAGE"), "mask": (1, "MASK")}),
        Node(3, "ZRealism_HeuristicAnalyzer", (760, 0), widgets={"subject": SUBJECT},
             links={"image": (2, "image"), "mask": (2, "mask")}),
        Node(4, "PreviewAny", (760, 420), title="Analyzer report", links={"source": (3, "report")}, width=320),
        Node(5, "ZRealism_ControlMaps", (380, 420), links={"image": (2, "image"), "mask": (2, "mask")}),
        # ComfyUI's own sampling chain: any LoRA, IPAdapter_plus, FreeU... plugs in here
        Node(20, "CheckpointLoaderSimple", (0, 760), models=[BASE], widgets={"ckpt_name": BASE.name}),
        Node(21, "LoraLoader", (380, 760), title="Load LoRA (your realism LoRA; strength 0 = off)",
             widgets={"lora_name": NATIVE_LORA, "strength_model": 0.0, "strength_clip": 0.0},
             links={"model": (20, "MODEL"), "clip": (20, "CLIP")}),
        Node(22, "CLIPTextEncode", (760, 760), title="Positive (from the analyzer)",
             links={"clip": (21, "CLIP"), "text": (3, "positive")}),
        Node(23, "CLIPTextEncode", (760, 980), title="Negative (from the analyzer)",
             links={"clip": (21, "CLIP"), "text": (3, "negative")}),
        Node(24, "ControlNetLoader", (1140, 760), models=[DEPTH], widgets={"control_net_name": DEPTH.name}),
        Node(25, "ControlNetLoader", (1140, 900), models=[POSE], widgets={"control_net_name": POSE.name}),
        Node(26, "ControlNetApplyAdvanced", (1520, 760), title="Apply depth ControlNet",
             links={"positive": (22, "CONDITIONING"), "negative": (23, "CONDITIONING"), "control_net": (24, "CONTROL_NET"),
                    "image": (5, "depth_map"), "strength": (3, "depth_scale"), "end_percent": (3, "control_end")}),
        Node(27, "ControlNetApplyAdvanced", (1900, 760), title="Apply OpenPose ControlNet",
             links={"positive": (26, "positive"), "negative": (26, "negative"), "control_net": (25, "CONTROL_NET"),
                    "image": (5, "pose_map"), "strength": (3, "pose_scale"), "end_percent": (3, "control_end")}),
        Node(28, "VAEEncode", (1140, 1060), links={"pixels": (2, "image"), "vae": (20, "VAE")}),
        Node(29, "KSampler", (2280, 760), widgets={"seed": 42, "sampler_name": "dpmpp_2m", "scheduler": "karras"},
             links={"model": (21, "MODEL"), "positive": (27, "positive"), "negative": (27, "negative"),
                    "latent_image": (28, "LATENT"), "steps": (3, "steps"), "cfg": (3, "cfg"), "denoise": (3, "denoise")}),
        Node(30, "VAEDecode", (2660, 760), links={"samples": (29, "LATENT"), "vae": (20, "VAE")}),
        Node(31, "SaveImage", (3040, 760), widgets={"filename_prefix": "ZRealism/native"}, links={"images": (30, "IMAGE")}),
        Node(32, "ZRealism_FidelityEvaluator", (3040, 1200),
             links={"source": (2, "image"), "result": (30, "IMAGE"), "mask": (2, "mask"),
                    "depth_map": (5, "depth_map"), "pose_map": (5, "pose_map")}),
        Node(33, "PreviewImage", (3420, 1200), title="Fidelity panel", links={"images": (32, "panel")}),
        Node(10, "Note", (0, 1200), width=700, height=330, text=(
            "Z-Realism around ComfyUI's own sampler: White Background Prep, Heuristic Analyzer (prompts, ControlNet "
            "strengths and end, steps, cfg, denoise), Z-Realism Control Maps (offline depth + OpenPose maps) and the "
            "Fidelity Evaluator, with core Load Checkpoint -> Load LoRA -> CLIP Text Encode -> Apply ControlNet x2 -> "
            "KSampler in between, so any LoRA, IPAdapter_plus or FreeU node plugs in as usual.\n\n"
            f"Load LoRA: put an SD1.5 realism LoRA in models/loras and select it (the graph names {NATIVE_LORA}); "
            "raise both strengths (0.6-0.8), or bypass the node.\n\n" + NOTE_MODELS.format(extra=""))),
    ])
    return [still, video, custom, detail, native]


# ------------------------------------------------------------------ writing

def dump(data: Dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def outputs(defs: Optional[Dict[str, Dict[str, Any]]] = None) -> Dict[Path, str]:
    """Every file this script writes, path -> text."""
    defs = defs or object_info()
    files: Dict[Path, str] = {}
    for wf in workflows():
        ui, api = build(wf, defs)
        files[HERE / f"{wf.name}.json"] = dump(ui)
        files[HERE / "api" / f"{wf.name}.json"] = dump(api)
    return files


def write_screenshots(folder: Path, thumb_width: int = 768) -> List[Path]:
    from PIL import Image

    written = []
    for wf in workflows():
        shot = Path(folder) / f"{wf.name}.png"
        if not shot.is_file():
            continue
        image = Image.open(shot).convert("RGB")
        doc = REPO / "docs" / f"workflow_{wf.name.replace('zrealism_', '')}.png"
        doc.parent.mkdir(exist_ok=True)
        image.save(doc, optimize=True)
        thumb = image.copy()
        thumb.thumbnail((thumb_width, thumb_width * 2), Image.LANCZOS)
        thumb.save(HERE / f"{wf.name}.jpg", quality=85, optimize=True)
        written += [doc, HERE / f"{wf.name}.jpg"]
    return written


def write_schematic(name: str, width: int = 768) -> Path:
    """A placeholder thumbnail drawn from the UI graph itself (node boxes, titles, links), for a workflow
    that has no editor screenshot yet; `--screenshots` replaces it with the real picture."""
    from PIL import Image, ImageDraw, ImageFont

    graph = json.loads((HERE / f"{name}.json").read_text())
    nodes = {n["id"]: n for n in graph["nodes"]}
    x0 = min(n["pos"][0] for n in nodes.values())
    y0 = min(n["pos"][1] for n in nodes.values())
    x1 = max(n["pos"][0] + n["size"][0] for n in nodes.values())
    y1 = max(n["pos"][1] + n["size"][1] for n in nodes.values())
    k = (width - 20) / float(x1 - x0)
    img = Image.new("RGB", (width, int((y1 - y0) * k) + 20), (32, 32, 36))
    d = ImageDraw.Draw(img)

    def box(n):
        return (10 + (n["pos"][0] - x0) * k, 10 + (n["pos"][1] - y0) * k,
                10 + (n["pos"][0] + n["size"][0] - x0) * k, 10 + (n["pos"][1] + n["size"][1] - y0) * k)

    for _lid, src, _ss, dst, _ds, _t in graph["links"]:
        a, b = box(nodes[src]), box(nodes[dst])
        d.line([(a[2], (a[1] + a[3]) / 2), (b[0], (b[1] + b[3]) / 2)], fill=(120, 160, 200), width=2)
    font = ImageFont.load_default()
    for n in nodes.values():
        b = box(n)
        note = n["type"] in ("Note", "MarkdownNote")
        d.rectangle(b, fill=(80, 64, 40) if note else (53, 53, 60), outline=(150, 150, 160))
        d.text((b[0] + 4, b[1] + 3), n.get("title") or n["type"].replace("ZRealism_", ""), fill=(235, 235, 235), font=font)
    path = HERE / f"{name}.jpg"
    img.save(path, quality=85, optimize=True)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report files that are out of date; write nothing")
    parser.add_argument("--screenshots", metavar="DIR", type=Path,
                        help="also turn DIR/<workflow>.png (from tests/integration/screenshot_workflows.mjs) into "
                             "docs/workflow_<name>.png and the editor's template thumbnails workflows/<workflow>.jpg")
    parser.add_argument("--core-from", metavar="DUMP", type=Path,
                        help="rewrite tests/data/comfyui_object_info.json from a ComfyUI /object_info dump")
    args = parser.parse_args(argv)
    if args.core_from:
        CORE_OBJECT_INFO.parent.mkdir(parents=True, exist_ok=True)
        CORE_OBJECT_INFO.write_text(dump(reduce_core(json.loads(args.core_from.read_text()))))
        print("wrote: " + str(CORE_OBJECT_INFO.relative_to(REPO)))
    if args.screenshots:
        for path in write_screenshots(args.screenshots):
            print("wrote: " + str(path.relative_to(REPO)))
    if not args.check:
        for wf in workflows():
            if not (HERE / f"{wf.name}.jpg").is_file() and (HERE / f"{wf.name}.json").is_file():
                print("wrote (schematic thumbnail; --screenshots makes the real one): "
                      + str(write_schematic(wf.name).relative_to(REPO)))
    if not CORE_OBJECT_INFO.is_file():
        print(f"missing {CORE_OBJECT_INFO} (core node definitions)", file=sys.stderr)
        return 2
    stale = []
    for path, text in outputs().items():
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path.relative_to(REPO)))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
