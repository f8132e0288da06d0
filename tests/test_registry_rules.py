"""The Comfy Registry's code rules on the whole repo, as part of the test suite: `comfy node validate`
runs ruff with S102 (exec), S307 (eval) and E702 (statements joined by ';'), and warns that they
will become errors; E703 (a trailing ';') is the same style rule."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = "S102,S307,E702,E703"


def test_repo_passes_the_registry_rules():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", ".", "--no-cache", "--isolated", "--select", RULES,
         "--output-format", "concise"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_rules_catch_joined_statements(tmp_path):
    (tmp_path / "bad.py").write_text("import os; import sys\nx = 1;\neval('1')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", ".", "--no-cache", "--isolated", "--select", RULES,
         "--output-format", "concise"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert all(code in proc.stdout for code in ("E702", "E703", "S307")), proc.stdout
