"""Shared test set-up: offline hub, the pack loaded as a package, a few image helpers."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# No test may reach the network: every model is built in code or written to tmp_path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Tiny test models gain nothing from a second thread, and OpenMP's spin-waits make two threads up to
# 10x slower whenever anything else runs on a 2-core machine. Set before torch is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "zrealism_pack"


def load_pack():
    """Import the repo root the way ComfyUI does: as a package (under a name of our own, since
    ComfyUI's own top-level `nodes` module would clash with ours)."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pack():
    return load_pack()
