"""Generate the shipped workflows (UI graph + API twin) from compact descriptions.

    python -m workflows.build            # rewrite workflows/*.json and workflows/api/*.json
    python -m workflows.build --check    # exit 1 if a file on disk differs from what would be written

Why generate instead of hand-editing: UI `widgets_values` are positional (the order of the widget
inputs in INPUT_TYPES, plus an extra "control_after_generate" value after every seed), so a renamed
or added node input silently shifts every value after it. Rebuilding from our nodes' INPUT_TYPES
(read in-process, the way ComfyUI's /object_info builds them) keeps the files in step.

Core ComfyUI node definitions come from tests/data/comfyui_object_info.json (the core nodes our
graphs use, reduced from ComfyUI 0.3.64's /object_info to types, input names, defaults, options and
outputs; refresh it with `--core-from DUMP`); ours from the pack's NODE_CLASS_MAPPINGS.

    python -m workflows.build --core-from object_info.json   # rewrite tests/data/comfyui_object_info.json

This file is the command; the parts live beside it: object_info.py (the /object_info port and
`load_pack`), graph.py (the graph language and its UI + API compiler), shipped.py (the workflow
list), pictures.py (screenshots and schematic thumbnails).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from workflows.graph import Model, Node, Workflow, build
from workflows.object_info import CORE_OBJECT_INFO, load_pack, object_info, pack_object_info, reduce_core
from workflows.pictures import write_schematic, write_screenshots
from workflows.shipped import workflows

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

__all__ = ["CORE_OBJECT_INFO", "Model", "Node", "Workflow", "build", "dump", "load_pack", "main", "object_info",
           "outputs", "pack_object_info", "workflows"]


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
        for path in write_screenshots(args.screenshots, [wf.name for wf in workflows()]):
            print("wrote: " + str(path.relative_to(REPO)))
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
    if not args.check:  # drawn from the graphs just written, so a new workflow gets its picture on the first run
        for wf in workflows():
            if not (HERE / f"{wf.name}.jpg").is_file():
                print("wrote (schematic thumbnail; --screenshots makes the real one): "
                      + str(write_schematic(wf.name).relative_to(REPO)))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
