"""Node definitions as ComfyUI's /object_info gives them: a port of its `node_info` for our classes
(NODE_CLASS_MAPPINGS loaded in-process by `load_pack`), plus the core nodes' facts kept in
tests/data/comfyui_object_info.json (reduced from ComfyUI 0.3.64's /object_info by `reduce_core`)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
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


def load_pack():
    """Import the repo root the way ComfyUI does: as a package (under a name of our own, since
    ComfyUI's own top-level `nodes` module would clash with ours). The one loader: the workflow build
    and tests/conftest.py both use it."""
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
