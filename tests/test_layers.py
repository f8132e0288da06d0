"""The core's house rules (issue 21): no import circle, no import that runs up a layer, no other unit's
private names, no deprecated path used inside the pack. The layer order is zrealism_core/layers.py."""
from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

from zrealism_core import layers

REPO = Path(__file__).resolve().parents[1]


def test_the_core_has_no_import_circle_and_no_upward_import():
    found, bad = layers.check()
    assert found == [], found
    assert bad == [], "\n".join(bad)


def _write(root: Path, files: dict) -> Path:
    for rel, text in files.items():
        path = root / "zrealism_core" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "zrealism_core"


def test_a_planted_circle_upward_import_private_name_and_old_path_are_caught(tmp_path):
    pkg = _write(tmp_path, {
        "__init__.py": "",
        "errors.py": "class InputError(Exception):\n    pass\n",
        "imaging/__init__.py": "",
        "imaging/a.py": "from . import b\n",
        "imaging/b.py": "def f():\n    from .a import x  # lazy: still a circle\n",
        "imaging/up.py": "from ..engine import transform\n",
        "metrics/__init__.py": "",
        "metrics/m.py": "from ..imaging.c import _secret\nfrom ..errors import InputError\n",
        "imaging/c.py": "_secret = 1\n",
        "engine/__init__.py": "from .transform import transform\n",
        "engine/transform.py": "from ..imaging import a\nfrom ..old import thing\n",
        "old.py": "def __getattr__(name):\n    raise AttributeError(name)\n",
        "mystery.py": "x = 1\n",
    })
    graph = layers.import_graph(pkg)
    assert layers.circles(graph) == [["zrealism_core.imaging.a", "zrealism_core.imaging.b"]]
    bad = layers.violations(graph, deprecated={"zrealism_core.old"})
    text = "\n".join(bad)
    assert "zrealism_core.imaging.up -> zrealism_core.engine.transform: runs up from layer 1 (imaging)" in text
    assert "zrealism_core.metrics.m -> zrealism_core.imaging.c: takes private _secret" in text
    assert "zrealism_core.engine.transform -> zrealism_core.old: a deprecated path" in text
    assert "zrealism_core.mystery: unit 'mystery' is not in the layer order" in text
    # downward and same-unit imports are fine; the deprecated stub itself is not checked
    assert not any(line.startswith(("zrealism_core.engine.transform -> zrealism_core.imaging",
                                    "zrealism_core.metrics.m -> zrealism_core.errors", "zrealism_core.old ")) for line in bad)
    assert len(bad) == 4, text


def test_the_layer_order_names_each_unit_once():
    units = [u for names in layers.LAYERS for u in names]
    assert len(units) == len(set(units))
    core = REPO / "zrealism_core"
    on_disk = {p.stem if p.is_file() else p.name for p in core.iterdir()
               if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    on_disk = {"" if u == "__init__" else u for u in on_disk}
    old = {m.split(".")[0] for m in layers.DEPRECATED if "." not in m}
    assert on_disk - old <= set(units), on_disk - old - set(units)


@pytest.mark.parametrize("old", sorted(layers.DEPRECATED))
def test_old_paths_forward_to_the_new_home_with_a_warning(old):
    stub = importlib.import_module(f"zrealism_core.{old}")
    new = [importlib.import_module(m.strip()) for m in layers.DEPRECATED[old].split(",")]
    name = next(n for n in sorted(vars(new[0])) if not n.startswith("_") and n not in ("annotations",)
                and getattr(getattr(new[0], n), "__module__", new[0].__name__) == new[0].__name__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert getattr(stub, name) is getattr(new[0], name)
    assert any(issubclass(w.category, DeprecationWarning) and new[0].__name__ in str(w.message) for w in caught)
    with pytest.raises(AttributeError):
        stub.no_such_name  # noqa: B018


def test_users_old_spellings_still_work():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from zrealism_core.control.hints import detail_hint
        from zrealism_core.control_maps import detail_hint as old_hint
        from zrealism_core.engine.pipeline import PipelineView
        from zrealism_core.models.runtime import stage
        from zrealism_core.pipe_view import PipelineView as old_view
        from zrealism_core.runtime.fallback import stage as new_stage
    assert old_hint is detail_hint and old_view is PipelineView and stage is new_stage


def _pack_files():
    for folder in ("nodes", "zrealism_core", "workflows", "benchmarks"):
        yield from (REPO / folder).rglob("*.py")
    yield REPO / "__init__.py"


def test_the_pack_never_imports_a_deprecated_path():
    old = {f"zrealism_core.{m}" for m in layers.DEPRECATED}
    stubs = {REPO / (m.replace(".", "/") + ".py") for m in old}
    hits = []
    for path in _pack_files():
        if path in stubs:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and "zrealism_core" in node.module:
                base = "zrealism_core" + node.module.split("zrealism_core", 1)[1]
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            hits += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names if n in old]
    assert hits == []


def test_the_nodes_import_the_core_relatively():
    """Inside ComfyUI the pack is a package under custom_nodes/ with its own name: an absolute
    `zrealism_core` import would load a second copy of the core (or none at all)."""
    hits = []
    for path in sorted((REPO / "nodes").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("zrealism_core"):
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("zrealism_core") for a in node.names):
                hits.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert hits == []
