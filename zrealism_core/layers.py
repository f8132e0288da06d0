"""The core's layer order, written once, and the check that reads it (tests/test_layers.py).

A module may import modules of its own layer (no circles) or of a layer below it, never one above.
Units are the core's top-level modules and packages (`imaging` covers `imaging/*`); the package's own
`__init__` (the public API, unit "") sits on top. Lazy imports inside functions count too: they are
how a circle hides. Deprecated old paths forward to their new home on first use and nothing in the
core may import them. A `_private` name is not imported from another unit (make it public instead).

    python -m zrealism_core.layers          # prints circles and upward imports; exit 1 if any
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

# lowest first; units in one tuple share a layer
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("errors", "data", "layers", "_moved"),  # the ground: error types, shipped files, this file
    ("imaging",),  # arrays, files, masks, colour spaces, video
    ("metrics",),  # plain numpy scores
    ("runtime",),  # device policy, fallback chain, placement, guidance schedule
    ("models",),  # file loaders, annotator weights, motion modules, catalog, schedulers
    ("text", "adapters"),  # prompt encoding; LoRA and IP-Adapter
    ("testing",),  # tiny random-weight models for tests and `zrealism selftest`
    ("control",),  # control maps, pose crop, detail hints and net, the empty-map rule
    ("settings",),  # defaults, params override, presets, the one resolver
    ("prep", "analysis", "engine", "animation", "evaluation"),  # the stages
    ("runner", "queue", "commands", "cli", "__main__", ""),  # the command, the queue over it, the public API on top
)

# old import paths kept one release as thin forwards (zrealism_core/_moved.py); old -> new module
DEPRECATED: Dict[str, str] = {
    "control_maps": "zrealism_core.control.maps, zrealism_core.control.pose_crop, zrealism_core.control.hints, zrealism_core.models.detectors, zrealism_core.models.depth_anything",
    "detail": "zrealism_core.control.detail",
    "detail_hints": "zrealism_core.control.hints, zrealism_core.metrics.edges, zrealism_core.errors",
    "empty_maps": "zrealism_core.control.empty",
    "pipe_view": "zrealism_core.adapters.views, zrealism_core.engine.pipeline",
    "params": "zrealism_core.settings",
    "models.device": "zrealism_core.runtime.device",
    "models.runtime": "zrealism_core.runtime.fallback",
    "models.placement": "zrealism_core.runtime.placement",
    "models.guidance": "zrealism_core.runtime.guidance",
    "models.lora": "zrealism_core.adapters.lora",
    "models.ip_adapter": "zrealism_core.adapters.ip_adapter",
    "imaging.panel": "zrealism_core.evaluation.panel",
}


def layer_of(unit: str, layers: Sequence[Sequence[str]] = LAYERS) -> Optional[int]:
    for i, names in enumerate(layers):
        if unit in names:
            return i
    return None


def _modules(root: Path, package: str) -> Dict[str, Path]:
    """Module name -> file, for every .py under `root` (the package directory)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_package(name: str, modules: Dict[str, Path]) -> bool:
    path = modules.get(name)
    return path is not None and path.name == "__init__.py"


def _resolve(node: ast.AST, module: str, modules: Dict[str, Path], package: str) -> List[Tuple[str, List[str]]]:
    """The package modules one import statement loads, each with the names it takes from it."""
    out: List[Tuple[str, List[str]]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == package or alias.name.startswith(package + "."):
                name = alias.name
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                out.append((name, []))
        return out
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module if _is_package(module, modules) else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            base = base.rsplit(".", 1)[0]
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
        if not (target == package or target.startswith(package + ".")):
            return out
    names = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in modules:  # `from . import engine` loads the submodule itself
            out.append((sub, []))
        else:
            names.append(alias.name)
    if names or not out:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        out.append((target, names))
    return out


def import_graph(root: Path, package: str = "zrealism_core") -> Dict[str, Dict[str, List[str]]]:
    """module -> {imported module -> names taken}, every import statement (lazy ones included)."""
    modules = _modules(root, package)
    graph: Dict[str, Dict[str, List[str]]] = {}
    for name, path in modules.items():
        edges: Dict[str, List[str]] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, names in _resolve(node, name, modules, package):
                    if target != name:
                        edges.setdefault(target, []).extend(names)
        graph[name] = edges
    return graph


def unit_of(module: str, package: str = "zrealism_core") -> str:
    rest = module[len(package) + 1:] if module.startswith(package + ".") else ""
    return rest.split(".", 1)[0]


def circles(graph: Dict[str, Dict[str, List[str]]]) -> List[List[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:  # recursion depth = longest import chain, a few dozen at most
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def violations(graph: Dict[str, Dict[str, List[str]]], layers: Sequence[Sequence[str]] = LAYERS,
               deprecated: Iterable[str] = (), package: str = "zrealism_core") -> List[str]:
    """Every import that runs up a layer, reaches a deprecated path, takes another unit's `_private`
    name, or comes from / goes to a unit the layer order does not name."""
    old = set(deprecated)
    out = []
    for src in sorted(graph):
        if src in old:
            continue
        su = unit_of(src, package)
        sl = layer_of(su, layers)
        if sl is None:
            out.append(f"{src}: unit {su!r} is not in the layer order")
            continue
        for dst, names in sorted(graph[src].items()):
            du = unit_of(dst, package)
            dl = layer_of(du, layers)
            if dst in old:
                out.append(f"{src} -> {dst}: a deprecated path (import {deprecated_target(dst)} instead)")
            elif dl is None:
                out.append(f"{src} -> {dst}: unit {du!r} is not in the layer order")
            elif dl > sl:
                out.append(f"{src} -> {dst}: runs up from layer {sl} ({su or 'package'}) to {dl} ({du or 'package'})")
            elif du != su:
                private = sorted({n for n in names if n.startswith("_") and not n.startswith("__")})
                if private:
                    out.append(f"{src} -> {dst}: takes private {', '.join(private)}")
    return out


def deprecated_target(module: str) -> str:
    return DEPRECATED.get(module.split("zrealism_core.", 1)[-1], "its new home")


def check(root: Optional[Path] = None) -> Tuple[List[List[str]], List[str]]:
    root = root or Path(__file__).resolve().parent
    graph = import_graph(root)
    return circles(graph), violations(graph, deprecated={f"zrealism_core.{m}" for m in DEPRECATED})


def main() -> int:
    found, bad = check()
    for group in found:
        print("circle: " + " <-> ".join(group))
    for line in bad:
        print("upward: " + line)
    print(f"{len(found)} circles, {len(bad)} upward imports")
    return 1 if found or bad else 0


if __name__ == "__main__":
    sys.exit(main())
