"""Shared test set-up: offline hub, the pack loaded as a package, a few image helpers."""
from __future__ import annotations

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
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repo on the path
    sys.path.insert(0, str(REPO))

from workflows.object_info import load_pack  # noqa: E402  (the one pack loader, shared with workflows/build.py)


@pytest.fixture(scope="session")
def pack():
    return load_pack()
