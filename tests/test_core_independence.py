"""zrealism_core must work without ComfyUI: no file imports it, and importing it with ComfyUI blocked works."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "zrealism_core"
BLOCKED = ("comfy", "folder_paths", "server", "nodes", "comfy_api", "comfy_extras", "execution")


def _violations(path: Path, depth: int = 1):
    """`depth`: how many package levels the file sits below (and including) zrealism_core."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > depth:  # a relative import that leaves zrealism_core (e.g. into the pack's nodes/)
                yield f"{path.name}:{node.lineno}: relative import out of zrealism_core"
                continue
            if node.level == 0 and node.module:
                names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        for name in names:
            if name.split(".")[0] in BLOCKED:
                yield f"{path.name}:{node.lineno}: imports {name}"


def test_no_comfyui_imports_in_core():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    bad = [v for f in files for v in _violations(f, len(f.relative_to(CORE).parts))]
    assert not bad, "zrealism_core must not import ComfyUI:\n" + "\n".join(bad)


def test_scanner_catches_an_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import folder_paths\nfrom comfy.utils import x\nimportlib.import_module('server')\nfrom ..nodes import y\n")
    assert len(list(_violations(f))) == 4


def test_core_imports_with_comfyui_blocked():
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {BLOCKED!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        import zrealism_core
        from zrealism_core import prepare_white_background, analyze, InputError
        import zrealism_core.imaging.color_lock, zrealism_core.imaging.sample, zrealism_core.text.tokens, zrealism_core.cli
        from zrealism_core.imaging.sample import sample_character
        r = prepare_white_background(sample_character(64, "flat"))
        assert r.image.shape == (64, 64, 3)
        bad = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not bad, bad
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
