"""Fixtures shared by the engine/loader/device/node tests (import them into a test module).

- tiny_set: tiny random-weight models written once per test process (LDM single file + config
  folder, diffusers folder, ControlNets in both layouts, a VAE) - zrealism_core.testing.tiny_models.
- tiny_pipe: the tiny single file + ControlNets loaded on the CPU (fp32), once per process.
- comfy_fakes: installs tests/fakes/{folder_paths, comfy.*} in sys.modules and points nodes/bridge/host.py
  at them for one test; yields a namespace with the fake modules and a models root to fill.
"""
from __future__ import annotations

import atexit
import functools
import importlib.util
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

FAKES = Path(__file__).resolve().parent


class one_torch_thread:
    """Tiny models gain nothing from threads, and on a shared 2-core box OpenMP spin-waiting made a
    0.4 s run take 15-30 s; one thread keeps them at ~1 s whatever else runs."""

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@functools.lru_cache(maxsize=None)
def _tiny_set():
    from zrealism_core.testing.tiny_models import write_tiny_model_set

    root = tempfile.mkdtemp(prefix="zr-tiny-")
    atexit.register(shutil.rmtree, root, True)
    with one_torch_thread():
        return write_tiny_model_set(root)


@functools.lru_cache(maxsize=None)
def _tiny_pipe():
    from zrealism_core.engine import load_pipeline

    s = _tiny_set()
    with one_torch_thread():
        return load_pipeline(s.checkpoint, s.depth_controlnet, s.pose_controlnet, device="cpu", config=s.config, cache=False)


@pytest.fixture(scope="session")
def tiny_set():
    return _tiny_set()


@pytest.fixture(scope="session")
def tiny_pipe():
    return _tiny_pipe()


def rand_image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).rand(h, w, 3).astype(np.float32)


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def comfy_fakes(monkeypatch, tmp_path, pack):
    saved = {k: sys.modules.get(k) for k in ("comfy", "comfy.model_management", "comfy.model_patcher", "comfy.patcher_extension",
                                             "comfy.utils", "comfy.latent_formats", "folder_paths", "latent_preview")}
    comfy = _load("comfy", FAKES / "comfy" / "__init__.py")
    mm = _load("comfy.model_management", FAKES / "comfy" / "model_management.py")
    pe = _load("comfy.patcher_extension", FAKES / "comfy" / "patcher_extension.py")
    mp = _load("comfy.model_patcher", FAKES / "comfy" / "model_patcher.py")
    cu = _load("comfy.utils", FAKES / "comfy" / "utils.py")
    lf = _load("comfy.latent_formats", FAKES / "comfy" / "latent_formats.py")
    comfy.model_management, comfy.model_patcher, comfy.patcher_extension, comfy.utils = mm, mp, pe, cu
    comfy.latent_formats = lf
    lp = _load("latent_preview", FAKES / "latent_preview.py")
    lp.reset()
    fp = _load("folder_paths", FAKES / "folder_paths.py")
    fp.setup(str(tmp_path))
    mm.reset()
    cu.bars.clear()
    bridge = pack.nodes.bridge
    host = pack.nodes.bridge.host  # the bridge's ComfyUI modules live there
    monkeypatch.setattr(host, "folder_paths", fp)
    monkeypatch.setattr(host, "model_management", mm)
    monkeypatch.setattr(host, "comfy_utils", cu)
    monkeypatch.setattr(host, "latent_formats", lf)
    monkeypatch.setattr(host, "latent_preview", lp)
    try:
        yield types.SimpleNamespace(model_management=mm, model_patcher=mp, patcher_extension=pe, utils=cu, folder_paths=fp,
                                    latent_preview=lp,
                                    models=Path(fp.models_dir), bridge=bridge)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
