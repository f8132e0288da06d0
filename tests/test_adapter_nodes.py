"""ZRealism_LoraLoader and ZRealism_IPAdapter under fake ComfyUI modules: folders, chaining, errors,
memory-manager tracking of the IP-Adapter modules, and the views reaching the sampler."""
from __future__ import annotations

import shutil

import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_set  # noqa: F401 (fixtures)
from test_engine_nodes import SAMPLE, _install_models, _load, _maps, _sampler
from zrealism_core.testing import tiny_ip_adapter as tip
from zrealism_core.testing import tiny_loras


def _files(models):
    (models / "ipadapter").mkdir(parents=True, exist_ok=True)
    tiny_loras.write_kohya_lora(models / "loras" / "tiny-realism.safetensors")
    tiny_loras.write_sdxl_lora(models / "loras" / "sdxl-style.safetensors")
    tip.write_tiny_ip_adapter(models / "ipadapter" / "ip-adapter-plus_tiny.safetensors", "plus")
    tip.write_sdxl_ip_adapter(models / "ipadapter" / "ip-adapter_sdxl.safetensors")
    tip.write_tiny_clip_vision(models / "clip_vision" / "tiny-clip-vision.safetensors")


def _lora_node(pack):
    return pack.nodes.lora_loader.ZRealism_LoraLoader()


def _ip_node(pack):
    return pack.nodes.ip_adapter.ZRealism_IPAdapter()


def _sample(pack, pipe):
    image = torch.from_numpy(rand_image(16, 16, 0)[None])
    return _sampler(pack).sample(pipe, image, depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)), **SAMPLE)[0]


def test_nodes_list_folders_and_chain(pack, comfy_fakes, tiny_set):
    _install_models(comfy_fakes.models, tiny_set)
    _files(comfy_fakes.models)
    lora_inputs = pack.nodes.lora_loader.ZRealism_LoraLoader.INPUT_TYPES()["required"]
    assert list(lora_inputs) == ["pipe", "lora_name", "strength"]
    assert "tiny-realism.safetensors" in lora_inputs["lora_name"][0]
    assert lora_inputs["strength"][1]["default"] == 1.0 and lora_inputs["strength"][1]["min"] == -4.0
    ip_inputs = pack.nodes.ip_adapter.ZRealism_IPAdapter.INPUT_TYPES()["required"]
    assert list(ip_inputs) == ["pipe", "ipadapter", "clip_vision", "image", "weight", "start", "end"]
    assert "ipadapter" in comfy_fakes.folder_paths.folder_names_and_paths  # registered when absent
    assert "ip-adapter-plus_tiny.safetensors" in ip_inputs["ipadapter"][0]
    assert ip_inputs["weight"][1]["default"] == 0.6

    pipe = _load(pack)
    plain = _sample(pack, pipe)
    (lora_pipe,) = _lora_node(pack).load(pipe, "tiny-realism.safetensors", 1.0)
    (twice,) = _lora_node(pack).load(lora_pipe, "tiny-realism.safetensors", -0.5)
    assert [s for _, s in twice.loras] == [1.0, -0.5]
    ref = torch.from_numpy(rand_image(20, 20, 4)[None])
    (ip_pipe,) = _ip_node(pack).apply(lora_pipe, "ip-adapter-plus_tiny.safetensors", "tiny-clip-vision.safetensors", ref, 1.0, 0.0, 1.0)
    with_lora = _sample(pack, lora_pipe)
    with_both = _sample(pack, ip_pipe)
    assert (with_lora - plain).abs().max() > 1e-3 and (with_both - with_lora).abs().max() > 1e-3
    assert torch.equal(_sample(pack, pipe), plain)

    loads = [c for c in comfy_fakes.model_management.calls if c[0] == "load_models_gpu"]
    tracked = {id(p.model.inner) for p in loads[-2][1]}  # the IP-Adapter job's load
    assert {id(m) for m in ip_pipe.adapter_modules().values()} <= tracked
    assert {id(m) for m in pipe.modules().values()} <= tracked
    assert len(loads[-1][1]) == 5  # the plain job loads the five pipeline modules only


def test_node_errors_name_the_file(pack, comfy_fakes, tiny_set):
    ModelFileError = pack.zrealism_core.errors.ModelFileError  # the pack's own copy of the class
    _install_models(comfy_fakes.models, tiny_set)
    _files(comfy_fakes.models)
    pipe = _load(pack)
    ref = torch.from_numpy(rand_image(20, 20, 4)[None])
    with pytest.raises(ModelFileError, match=r"sdxl-style\.safetensors is a LoRA for SDXL"):
        _lora_node(pack).load(pipe, "sdxl-style.safetensors", 1.0)
    with pytest.raises(ModelFileError, match=r"'missing.safetensors' was not found.*loras"):
        _lora_node(pack).load(pipe, "missing.safetensors", 1.0)
    with pytest.raises(ModelFileError, match=r"ip-adapter_sdxl\.safetensors is an IP-Adapter for SDXL"):
        _ip_node(pack).apply(pipe, "ip-adapter_sdxl.safetensors", "tiny-clip-vision.safetensors", ref, 0.6, 0.0, 1.0)
    with pytest.raises(ModelFileError, match=r"needs its image encoder"):
        _ip_node(pack).apply(pipe, "ip-adapter-plus_tiny.safetensors", "none", ref, 0.6, 0.0, 1.0)
    shutil.copy(tiny_set.depth_controlnet, comfy_fakes.models / "loras" / "controlnet-in-loras.safetensors")
    with pytest.raises(ModelFileError, match=r"controlnet-in-loras\.safetensors is a controlnet, not a LoRA"):
        _lora_node(pack).load(pipe, "controlnet-in-loras.safetensors", 1.0)
    assert pipe.loras == () and pipe.ip_adapter is None
