"""bridge.annotator_dirs(): the folders the nodes hand to depth_map/pose_map, with a light folder_paths fake."""
from __future__ import annotations

import importlib
import types

import pytest

from zrealism_core.models import annotators
def _fake_folder_paths(models_dir, custom_nodes):
    table = {"custom_nodes": ([str(custom_nodes)], set())}

    def get_folder_paths(name):
        return list(table[name][0])  # KeyError for unknown names, like ComfyUI

    return types.SimpleNamespace(models_dir=str(models_dir), folder_names_and_paths=table, get_folder_paths=get_folder_paths)


@pytest.fixture
def bridge(pack, monkeypatch):
    monkeypatch.delenv("AUX_ANNOTATOR_CKPTS_PATH", raising=False)
    return importlib.import_module(f"{pack.__name__}.nodes.bridge")


def test_registers_zrealism_annotators_then_controlnet_aux_ckpts(bridge, tmp_path, monkeypatch):
    models, custom_nodes = tmp_path / "models", tmp_path / "custom_nodes"
    aux = custom_nodes / "comfyui_controlnet_aux" / "ckpts"
    aux.mkdir(parents=True)
    (custom_nodes / "some_other_pack" / "ckpts").mkdir(parents=True)
    fake = _fake_folder_paths(models, custom_nodes)
    monkeypatch.setattr(bridge.host, "folder_paths", fake)
    dirs = bridge.annotator_dirs()
    assert dirs == [str(models / "zrealism_annotators"), str(aux)]
    assert "zrealism_annotators" in fake.folder_names_and_paths  # registered with ComfyUI
    # Called again (every run): no duplicates.
    assert bridge.annotator_dirs() == dirs


def test_aux_env_folder_and_no_aux_pack(bridge, tmp_path, monkeypatch):
    models, custom_nodes, env_dir = tmp_path / "models", tmp_path / "custom_nodes", tmp_path / "aux_env"
    custom_nodes.mkdir()
    env_dir.mkdir()
    monkeypatch.setattr(bridge.host, "folder_paths", _fake_folder_paths(models, custom_nodes))
    monkeypatch.setenv("AUX_ANNOTATOR_CKPTS_PATH", str(env_dir))
    assert bridge.annotator_dirs() == [str(models / "zrealism_annotators"), str(env_dir)]


def test_outside_comfyui_only_a_neighbouring_aux_pack_is_searched(bridge, monkeypatch):
    monkeypatch.setattr(bridge.host, "folder_paths", None)
    dirs = bridge.annotator_dirs()  # no ComfyUI: no model folders, and no error
    assert all(d.lower().replace("-", "_").rstrip("/\\").endswith("ckpts") and "comfyui_controlnet_aux" in d.lower() for d in dirs)


def test_nodes_dirs_feed_the_core_search(bridge, tmp_path, monkeypatch):
    """What a node does: annotator_dirs() -> locate; files in models/zrealism_annotators are found."""
    models, custom_nodes = tmp_path / "models", tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    target = models / "zrealism_annotators"
    target.mkdir(parents=True)
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        (target / name).write_bytes(b"x")
    monkeypatch.setattr(bridge.host, "folder_paths", _fake_folder_paths(models, custom_nodes))
    files = annotators.locate_openpose(bridge.annotator_dirs(), include_hand=True, include_face=True)
    assert files["facenet.pth"] == target / "facenet.pth"
