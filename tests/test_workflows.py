"""The shipped workflows load and validate as ComfyUI would check them, without ComfyUI.

UI graphs (workflows/*.json) are checked against the frontend's version-0.4 schema and for link
consistency; every node type, required input, link type and combo value against the node
definitions (the core nodes of ComfyUI 0.3.64's /object_info in tests/data/comfyui_object_info.json
plus our NODE_CLASS_MAPPINGS, read in-process); each API twin (workflows/api/*.json) must be what
"Export (API)" makes of its graph. The UI -> API conversion here is written independently of
workflows/build.py on purpose.

The workflows as released (tests/data/released_workflows/, copied from the release commit f0336f9)
must still load against today's nodes: users' saved graphs store widget values by position, so an
input inserted in the middle (instead of appended to `optional` with a default) shifts every value
after it.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
RELEASED = REPO / "tests" / "data" / "released_workflows"
EXPECTED = ("zrealism_still", "zrealism_video", "zrealism_custom_maps", "zrealism_still_detail", "zrealism_still_native",
            "zrealism_identity")
UI_ONLY = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".png", ".jpg", ".jpeg", ".webp", ".mp4", ".gif")


def _load_builder():
    spec = importlib.util.spec_from_file_location("zrealism_workflow_build", WORKFLOWS / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


build = _load_builder()


@pytest.fixture(scope="module")
def defs(pack) -> Dict[str, Dict[str, Any]]:
    assert build.CORE_OBJECT_INFO.is_file(), f"{build.CORE_OBJECT_INFO} is missing"
    assert not pack.nodes.LOAD_ERRORS, pack.nodes.LOAD_ERRORS
    return build.object_info(pack)


def ui_files() -> List[Path]:
    return sorted(WORKFLOWS.glob("*.json"))


def _kind(spec) -> str:
    return "COMBO" if isinstance(spec[0], (list, tuple)) else str(spec[0])


def _opts(spec) -> Dict[str, Any]:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def _all_inputs(info) -> Dict[str, Any]:
    return {**info["input"].get("required", {}), **info["input"].get("optional", {})}


def _widget_names(info) -> List[str]:
    names = []
    for section in ("required", "optional"):
        for name in info.get("input_order", {}).get(section, list(info["input"].get(section, {}))):
            spec = info["input"][section][name]
            if _kind(spec) in WIDGET_TYPES and not _opts(spec).get("forceInput"):
                names.append(name)
    return names


# ------------------------------------------------------------------ checks (return problems)

def ui_problems(wf: Dict[str, Any], defs, released: bool = False) -> List[str]:
    """Schema keys of version 0.4 and link consistency in both directions. `released`: a graph saved
    by an older version, whose nodes may since have gained outputs at the end."""
    p: List[str] = []
    for key, typ in (("last_node_id", (int, str)), ("last_link_id", int), ("nodes", list), ("links", list),
                     ("version", (int, float))):
        if not isinstance(wf.get(key), typ):
            p.append(f"top-level {key!r} missing or not {typ}")
    if p:
        return p
    if wf["version"] != 0.4:
        p.append(f"version is {wf['version']}, expected 0.4")
    nodes = {n["id"]: n for n in wf["nodes"]}
    if len(nodes) != len(wf["nodes"]):
        p.append("duplicate node ids")
    for n in wf["nodes"]:
        for key in ("id", "type", "pos", "size", "flags", "order", "mode", "properties"):
            if key not in n:
                p.append(f"node {n.get('id')}: missing {key!r}")
        for key in ("pos", "size"):
            if not (isinstance(n.get(key), list) and len(n[key]) == 2 and all(isinstance(v, (int, float)) for v in n[key])):
                p.append(f"node {n.get('id')}: {key} is not [x, y]")
        for m in n.get("properties", {}).get("models", []):
            if not {"name", "url", "directory"} <= set(m) or not str(m["url"]).startswith("https://"):
                p.append(f"node {n['id']}: bad models[] entry {m}")
        if n["id"] > wf["last_node_id"]:
            p.append(f"node {n['id']} above last_node_id")
    link_ids = set()
    for link in wf["links"]:
        if not (isinstance(link, list) and len(link) == 6):
            p.append(f"link {link} is not [id, origin_id, origin_slot, target_id, target_slot, type]")
            continue
        lid, oid, oslot, tid, tslot, ltype = link
        link_ids.add(lid)
        if lid > wf["last_link_id"]:
            p.append(f"link {lid} above last_link_id")
        if oid not in nodes or tid not in nodes:
            p.append(f"link {lid}: unknown node")
            continue
        outs, ins = nodes[oid].get("outputs", []), nodes[tid].get("inputs", [])
        if oslot >= len(outs) or lid not in (outs[oslot].get("links") or []):
            p.append(f"link {lid}: not listed on output {oslot} of node {oid}")
        if tslot >= len(ins) or ins[tslot].get("link") != lid:
            p.append(f"link {lid}: not the link of input {tslot} of node {tid}")
        elif oslot < len(outs) and outs[oslot]["type"] != ltype:
            p.append(f"link {lid}: type {ltype} differs from the output's {outs[oslot]['type']}")
    for n in wf["nodes"]:
        for inp in n.get("inputs", []):
            if inp.get("link") is not None and inp["link"] not in link_ids:
                p.append(f"node {n['id']} input {inp['name']}: link {inp['link']} not in links")
        for out in n.get("outputs", []):
            for lid in out.get("links") or []:
                if lid not in link_ids:
                    p.append(f"node {n['id']} output {out['name']}: link {lid} not in links")
        if n["type"] in UI_ONLY:
            continue
        info = defs.get(n["type"])
        if info is None:
            p.append(f"node {n['id']}: unknown type {n['type']}")
            continue
        outs = n.get("outputs", [])
        current = [str(t) for t in info["output"]]
        if [o["type"] for o in outs] != (current[:len(outs)] if released else current):
            p.append(f"node {n['id']}: outputs {[o['type'] for o in outs]} differ from {info['output']}")
    return p


def ui_to_api(wf: Dict[str, Any], defs, released: bool = False) -> Dict[str, Any]:
    """What "Export (API)" makes of a UI graph (UI-only and muted/bypassed nodes are not used here).
    `released`: an older graph may lack the values of optional widgets added since; they take their
    defaults, as in the editor."""
    links = {l[0]: l for l in wf["links"]}
    prompt: Dict[str, Any] = {}
    for n in wf["nodes"]:
        if n["type"] in UI_ONLY:
            continue
        info = defs[n["type"]]
        specs = _all_inputs(info)
        values = list(n.get("widgets_values") or [])
        inputs: Dict[str, Any] = {}
        pos = 0
        for name in _widget_names(info):
            if pos >= len(values):
                optional = info["input"].get("optional", {})
                if released and name in optional and "default" in _opts(optional[name]):
                    inputs[name] = _opts(optional[name])["default"]
                    continue
                raise AssertionError(f"node {n['id']} ({n['type']}): too few widgets_values for {name}")
            inputs[name] = values[pos]
            pos += 1
            spec = specs[name]
            wants_control = _opts(spec).get("control_after_generate")
            if wants_control is None:
                wants_control = name in ("seed", "noise_seed")
            if _kind(spec) == "INT" and wants_control:
                assert pos < len(values) and values[pos] in CONTROL_VALUES, \
                    f"node {n['id']}: {name} needs a control_after_generate value after it"
                pos += 1
            if _opts(spec).get("image_upload"):
                pos += 1 if pos < len(values) and values[pos] == "image" else 0
        if pos != len(values):
            raise AssertionError(f"node {n['id']} ({n['type']}): {len(values) - pos} extra widgets_values {values[pos:]}")
        for inp in n.get("inputs", []):
            if inp.get("link") is not None:
                _, oid, oslot, _, _, _ = links[inp["link"]]
                inputs[inp["name"]] = [str(oid), oslot]
        prompt[str(n["id"])] = {"inputs": inputs, "class_type": n["type"]}
    return prompt


def _looks_like_file(value: Any) -> bool:
    return isinstance(value, str) and value.lower().endswith(FILE_SUFFIXES)


def api_problems(prompt: Dict[str, Any], defs) -> List[str]:
    """The checks of ComfyUI's execution.validate_prompt / validate_inputs that need no files."""
    p: List[str] = []
    if not any(defs.get(n.get("class_type"), {}).get("output_node") for n in prompt.values()):
        p.append("no output node (prompt_no_outputs)")
    for nid, n in prompt.items():
        info = defs.get(n.get("class_type"))
        if info is None:
            p.append(f"{nid}: unknown class_type {n.get('class_type')}")
            continue
        required = info["input"].get("required", {})
        specs = _all_inputs(info)
        for name in required:
            if name not in n["inputs"]:
                p.append(f"{nid} {n['class_type']}: required input {name!r} missing")
        for name, value in n["inputs"].items():
            if name not in specs:
                p.append(f"{nid} {n['class_type']}: unknown input {name!r}")
                continue
            spec = specs[name]
            kind, opts = _kind(spec), _opts(spec)
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = prompt.get(value[0])
                if src is None:
                    p.append(f"{nid}.{name}: links to missing node {value[0]}")
                    continue
                out_types = defs[src["class_type"]]["output"]
                if not 0 <= value[1] < len(out_types):
                    p.append(f"{nid}.{name}: output {value[1]} of {src['class_type']} does not exist")
                    continue
                received = str(out_types[value[1]])
                expected = "COMBO" if kind == "COMBO" else kind
                if "*" not in (received, expected) and not (
                    set(received.split(",")) & set(expected.split(","))
                ):
                    p.append(f"{nid}.{name}: gets {received}, expects {expected} (return_type_mismatch)")
                continue
            if kind == "COMBO":
                choices = spec[0] if isinstance(spec[0], (list, tuple)) else opts.get("options", [])
                if value not in choices and not _looks_like_file(value):
                    p.append(f"{nid}.{name}: {value!r} not in {list(choices)[:8]} (value_not_in_list)")
            elif kind in ("INT", "FLOAT"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and not isinstance(value, int)):
                    p.append(f"{nid}.{name}: {value!r} is not {kind}")
                elif "min" in opts and value < opts["min"]:
                    p.append(f"{nid}.{name}: {value} < min {opts['min']}")
                elif "max" in opts and value > opts["max"]:
                    p.append(f"{nid}.{name}: {value} > max {opts['max']}")
            elif kind == "STRING" and not isinstance(value, str):
                p.append(f"{nid}.{name}: {value!r} is not a string")
            elif kind == "BOOLEAN" and not isinstance(value, bool):
                p.append(f"{nid}.{name}: {value!r} is not a boolean")
            elif kind not in WIDGET_TYPES:
                p.append(f"{nid}.{name}: {kind} input must be a link, got {value!r}")
    return p


def released_problems(wf: Dict[str, Any], twin: Dict[str, Any], defs) -> List[str]:
    """Why a graph (UI + API twin) saved by an older version would not load as it was saved today:
    everything above, plus every value the twin holds must land on the same input today."""
    p = ui_problems(wf, defs, released=True)
    try:
        prompt = ui_to_api(wf, defs, released=True)
    except AssertionError as exc:
        return p + [str(exc)]
    p += api_problems(prompt, defs) + api_problems(twin, defs)
    for nid, node in twin.items():
        now = prompt.get(nid, {}).get("inputs", {})
        for name, value in node["inputs"].items():
            if now.get(name) != value:
                p.append(f"{nid} {node['class_type']}: saved {name}={value!r}, loads today as {now.get(name)!r}")
    return p


# ------------------------------------------------------------------ the shipped files

def test_expected_workflows_are_shipped():
    names = {p.stem for p in ui_files()}
    assert set(EXPECTED) <= names, f"missing: {set(EXPECTED) - names}"
    for name in names:
        assert (WORKFLOWS / "api" / f"{name}.json").is_file(), f"no API twin for {name}"
        assert (WORKFLOWS / f"{name}.jpg").is_file(), f"no thumbnail {name}.jpg"
    assert {p.stem for p in (WORKFLOWS / "api").glob("*.json")} <= names, "API file without a UI graph"


@pytest.mark.parametrize("path", ui_files(), ids=lambda p: p.stem)
def test_ui_graph_is_valid(path, defs):
    wf = json.loads(path.read_text())
    assert ui_problems(wf, defs) == []
    prompt = ui_to_api(wf, defs)
    assert api_problems(prompt, defs) == []
    ours = {n["type"] for n in wf["nodes"]} & set(build.pack_object_info())
    assert ours, "a Z-Realism workflow without Z-Realism nodes"
    declared = {m["name"] for n in wf["nodes"] for m in n["properties"].get("models", [])}
    for name in declared:  # the editor only offers a download for a model a widget actually selects
        assert any(name in (n.get("widgets_values") or []) for n in wf["nodes"]), name


@pytest.mark.parametrize("path", ui_files(), ids=lambda p: p.stem)
def test_api_twin_matches_ui_graph(path, defs):
    wf = json.loads(path.read_text())
    twin = json.loads((WORKFLOWS / "api" / path.name).read_text())
    assert api_problems(twin, defs) == []
    stripped = {k: {"inputs": v["inputs"], "class_type": v["class_type"]} for k, v in twin.items()}
    assert stripped == ui_to_api(wf, defs)


def test_files_are_up_to_date_with_node_definitions(defs):
    """Regenerate with `python -m workflows.build` after changing a node's inputs."""
    stale = [str(p.relative_to(REPO)) for p, text in build.outputs(defs).items()
             if not p.is_file() or p.read_text() != text]
    assert stale == [], f"out of date (run python -m workflows.build): {stale}"


def test_image_folder_variant_is_valid(defs):
    """The graph the real-server test runs from a folder (the still graph with Load Image Folder; its names
    linked into Save Image's filename_prefix) passes the same checks as the shipped ones."""
    from integration.test_comfyui_server import with_image_folder

    prompt = with_image_folder(json.loads((WORKFLOWS / "api" / "zrealism_still.json").read_text()), "sheet")
    assert "ZRealism_LoadImageFolder" in {n["class_type"] for n in prompt.values()}
    assert api_problems(prompt, defs) == []
    save = next(n for n in prompt.values() if n["class_type"] == "SaveImage")
    bad = copy.deepcopy(prompt)
    next(n for n in bad.values() if n["class_type"] == "SaveImage")["inputs"]["filename_prefix"] = save["inputs"]["filename_prefix"][:1] + [0]
    assert any("return_type_mismatch" in p for p in api_problems(bad, defs))  # the IMAGE output is no prefix


# ------------------------------------------------------------------ the checks themselves can fail

@pytest.fixture()
def small(defs):
    """A two-node core graph: LoadImage -> SaveImage."""
    wf = build.Workflow("t", [
        build.Node(1, "LoadImage", (0, 0), widgets={"image": "example.png"}),
        build.Node(2, "SaveImage", (400, 0), links={"images": (1, "IMAGE")}),
    ])
    return build.build(wf, defs)


def test_small_graph_passes(small, defs):
    ui, api = small
    assert ui_problems(ui, defs) == [] and api_problems(api, defs) == []
    assert ui_to_api(ui, defs) == {k: {"inputs": v["inputs"], "class_type": v["class_type"]} for k, v in api.items()}
    assert ui["nodes"][0]["widgets_values"] == ["example.png", "image"]


def test_checks_catch_broken_graphs(small, defs):
    ui, api = small
    bad = copy.deepcopy(ui)
    bad["links"][0][4] = 3  # target slot that does not hold the link
    assert any("not the link of input" in s for s in ui_problems(bad, defs))
    bad = copy.deepcopy(ui)
    bad["nodes"][0]["outputs"][0]["links"] = []
    assert any("not listed on output" in s for s in ui_problems(bad, defs))
    bad = copy.deepcopy(ui)
    del bad["last_link_id"]
    assert ui_problems(bad, defs)
    bad = copy.deepcopy(ui)
    bad["nodes"][1]["type"] = "NoSuchNode"
    assert any("unknown type" in s for s in ui_problems(bad, defs))
    bad = copy.deepcopy(ui)
    bad["nodes"][1]["widgets_values"].append("surplus")
    with pytest.raises(AssertionError):
        ui_to_api(bad, defs)

    bad = copy.deepcopy(api)
    del bad["2"]
    assert "no output node (prompt_no_outputs)" in api_problems(bad, defs)
    bad = copy.deepcopy(api)
    del bad["2"]["inputs"]["images"]
    assert any("required input 'images' missing" in s for s in api_problems(bad, defs))
    bad = copy.deepcopy(api)
    bad["2"]["inputs"]["images"] = ["1", 1]  # MASK into IMAGE
    assert any("return_type_mismatch" in s for s in api_problems(bad, defs))
    bad = copy.deepcopy(api)
    bad["3"] = {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "cubic",
                                                         "width": 64, "height": 64, "crop": "middle"}}
    assert any("value_not_in_list" in s for s in api_problems(bad, defs))
    bad["3"]["inputs"].update(upscale_method="bicubic", width=-4)
    assert any("< min" in s for s in api_problems(bad, defs))


def test_seed_widget_gets_a_control_value(defs):
    """The frontend stores "control after generate" right after a seed; conversion must skip it."""
    wf = build.Workflow("t", [
        build.Node(1, "KSampler", (0, 0), widgets={"seed": 7}),
    ])
    ui, api = build.build(wf, defs)
    assert ui["nodes"][0]["widgets_values"][:2] == [7, "fixed"]
    assert ui_to_api(ui, defs)["1"]["inputs"]["seed"] == 7
    assert api["1"]["inputs"]["seed"] == 7 and "control_after_generate" not in api["1"]["inputs"]


# ------------------------------------------------------------------ the workflows as released

def released_files() -> List[Path]:
    return sorted(RELEASED.glob("*.json"))


RELEASED_NAMES = {"zrealism_still", "zrealism_video", "zrealism_custom_maps"}  # shipped in f0336f9


def test_released_workflows_are_kept():
    assert {p.stem for p in released_files()} == RELEASED_NAMES
    assert {p.stem for p in (RELEASED / "api").glob("*.json")} == RELEASED_NAMES


@pytest.mark.parametrize("path", released_files(), ids=lambda p: p.stem)
def test_released_workflow_still_loads(path, defs):
    wf = json.loads(path.read_text())
    twin = json.loads((RELEASED / "api" / path.name).read_text())
    assert released_problems(wf, twin, defs) == []


def _with_input(defs, node: str, name: str, spec: list, section: str, after: str = None):
    """A copy of `defs` where `node` has a new input `name`, after `after` (None: at the end)."""
    changed = copy.deepcopy(defs)
    info = changed[node]
    old = info["input"].setdefault(section, {})
    order = list(info.get("input_order", {}).get(section, list(old)))
    order.insert(order.index(after) + 1 if after else len(order), name)
    info["input"][section] = {k: ({**old, name: spec})[k] for k in order}
    info.setdefault("input_order", {})[section] = order
    return changed


def test_released_check_catches_an_input_inserted_in_the_middle(defs):
    path = RELEASED / "zrealism_still.json"
    wf, twin = json.loads(path.read_text()), json.loads((RELEASED / "api" / path.name).read_text())
    sampler = "ZRealism_DualControlNetSampler"
    new = ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}]
    middle = _with_input(defs, sampler, "sharpness", new, "required", after="seed")
    assert released_problems(wf, twin, middle)
    # two inputs of one type swapped: every value still type-checks, but lands on the other input
    swapped = copy.deepcopy(defs)
    order = swapped[sampler]["input_order"]["required"]
    i, j = order.index("depth_start"), order.index("depth_end")
    order[i], order[j] = order[j], order[i]
    problems = released_problems(wf, twin, swapped)
    assert any("saved depth_start=0.0, loads today as 1.0" in s for s in problems), problems
    # the same input appended to `optional` with a default is what the contract allows
    assert released_problems(wf, twin, _with_input(defs, sampler, "sharpness", new, "optional")) == []
    # ... but not without a default, nor as a new required widget at the end
    assert released_problems(wf, twin, _with_input(defs, sampler, "sharpness", new[:1], "optional"))
    assert released_problems(wf, twin, _with_input(defs, sampler, "sharpness", new, "required"))


def test_released_check_allows_outputs_appended_at_the_end(defs):
    path = RELEASED / "zrealism_video.json"
    wf, twin = json.loads(path.read_text()), json.loads((RELEASED / "api" / path.name).read_text())
    changed = copy.deepcopy(defs)
    changed["ZRealism_DualControlNetSampler"]["output"] = [*changed["ZRealism_DualControlNetSampler"]["output"], "STRING"]
    assert released_problems(wf, twin, changed) == []
    changed["ZRealism_DualControlNetSampler"]["output"] = ["STRING", *defs["ZRealism_DualControlNetSampler"]["output"]]
    assert released_problems(wf, twin, changed)


def test_benchmark_graphs_do_the_same_work(defs):
    """benchmarks/bench_vs_comfyui's two graphs (the shipped still and native graphs, stripped): valid, no node
    of prep/analyzer/maps/LoRA/evaluator left, and the same files, prompt, seed and number of steps on both sides."""
    from benchmarks.bench_vs_comfyui import STRIPPED, Job, dangling_links, native_graph, our_graph, shipped_graphs, strip_nodes

    shipped = shipped_graphs()
    job = Job("sd.safetensors", "depth.safetensors", "pose.safetensors", steps=8, denoise=0.5)
    native, ours = native_graph(shipped["native"], job, 7), our_graph(shipped["ours"], job, 7, "fast")
    for g in (native, ours):
        assert api_problems(g, defs) == []
        assert not {n["class_type"] for n in g.values()} & set(STRIPPED)
        assert sorted(n["inputs"]["image"] for n in g.values() if n["class_type"] == "LoadImage") == sorted(
            [job.image, job.depth_map, job.pose_map])
    k = next(n["inputs"] for n in native.values() if n["class_type"] == "KSampler")
    s = next(n["inputs"] for n in ours.values() if n["class_type"] == "ZRealism_DualControlNetSampler")
    assert (k["steps"], k["denoise"], k["seed"], k["cfg"], k["sampler_name"]) == (4, 0.5, 7, 7.0, "euler")  # 8 x 0.5 runs 4
    assert (s["steps"], s["denoise"], s["seed"], s["cfg"], s["scheduler"], s["preset"]) == (8, 0.5, 7, 7.0, "euler", "fast")
    texts = sorted(n["inputs"]["text"] for n in native.values() if n["class_type"] == "CLIPTextEncode")
    assert texts == sorted([s["prompt"], s["negative"]]) == sorted([job.prompt, job.negative])
    nets = {n["inputs"]["control_net_name"]: n for n in native.values() if n["class_type"] == "ControlNetLoader"}
    assert set(nets) == {job.depth_net, job.pose_net}
    # each net gets its own map: the apply fed by the depth loader reads the depth map's Load Image
    for apply in (n for n in native.values() if n["class_type"] == "ControlNetApplyAdvanced"):
        net = native[apply["inputs"]["control_net"][0]]["inputs"]["control_net_name"]
        assert native[apply["inputs"]["image"][0]]["inputs"]["image"] == (job.depth_map if net == job.depth_net else job.pose_map)
        assert (apply["inputs"]["strength"], apply["inputs"]["start_percent"], apply["inputs"]["end_percent"]) == (0.7, 0.0, 1.0)
    assert ours[s["depth_map"][0]]["inputs"]["image"] == job.depth_map and ours[s["pose_map"][0]]["inputs"]["image"] == job.pose_map
    # stripping a node that is still used, without re-linking it, leaves a dangling link, which the builders refuse
    assert dangling_links(strip_nodes(shipped["native"])) != []


def test_benchmark_log_parsing():
    from benchmarks.bench_vs_comfyui import executed_seconds, our_stages

    log = ("got prompt\nzrealism: synthesizing (4 steps) ...\nzrealism: synthesizing done in 12.50 s\n"
           "zrealism: decoding done in 1.25 s\nzrealism: decoding done in 0.25 s\nPrompt executed in 14.02 seconds\n")
    assert executed_seconds(log) == 14.02 and executed_seconds("got prompt\n") is None
    assert our_stages(log) == {"synthesizing": 12.5, "decoding": 1.5}
