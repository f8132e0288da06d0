"""The graph language and its compiler: compact descriptions (`Model`, `Node`, `Workflow`) -> the
editor's UI graph (version 0.4, frontend 1.27) and its API prompt, with widget values placed by the
nodes' own input order (the frontend's rules for widgets, seed controls and upload buttons)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

COMFYUI_VERSION = "0.3.64"
FRONTEND_VERSION = "1.27.10"

# Input types the frontend draws as widgets (everything else is a link-only socket).
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


# ------------------------------------------------------------------ input specs

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
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"z-realism/workflows/{name}"))
