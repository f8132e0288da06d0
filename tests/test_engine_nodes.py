"""ModelLoader and DualControlNetSampler nodes against light ComfyUI fakes (tests/fakes), and
against a real ComfyUI checkout when COMFYUI_DIR is set."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, comfy_fakes, rand_image, tiny_set  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _install_models(models: Path, s) -> None:
    shutil.copytree(s.diffusers, models / "diffusers" / "tiny-sd15")
    shutil.copy(s.depth_controlnet, models / "controlnet" / "tiny_depth.safetensors")
    shutil.copy(s.pose_controlnet, models / "controlnet" / "tiny_openpose.safetensors")
    shutil.copy(s.vae, models / "vae" / "tiny_vae.safetensors")
    shutil.copy(s.checkpoint, models / "checkpoints" / "tiny_ldm.safetensors")


def _loader(pack):
    return pack.nodes.model_loader.ZRealism_ModelLoader()


def _sampler(pack):
    return pack.nodes.dual_controlnet_sampler.ZRealism_DualControlNetSampler()


def _load(pack, **kw):
    args = dict(checkpoint="[diffusers] tiny-sd15", depth_controlnet="tiny_depth.safetensors",
                pose_controlnet="tiny_openpose.safetensors", vae="none", precision="auto", device="auto", cpu_fallback=True)
    args.update(kw)
    return _loader(pack).load(**args)[0]


SAMPLE = dict(prompt="photo", negative="drawing", seed=3, steps=4, cfg=7.0, denoise=0.5, depth_scale=0.7,
              pose_scale=0.7, depth_start=0.0, depth_end=1.0, pose_start=0.0, pose_end=1.0,
              scheduler="dpmpp_2m_karras", color_lock=0.0)


def _maps(batch=1, size=(24, 32)):
    return torch.from_numpy(np.stack([rand_image(*size, 10 + i) for i in range(batch)]))


def test_nodes_registered(pack):
    assert {"ZRealism_ModelLoader", "ZRealism_DualControlNetSampler"} <= set(pack.nodes.NODE_CLASS_MAPPINGS)
    assert not {"model_loader", "dual_controlnet_sampler"} & set(pack.nodes.LOAD_ERRORS)
    tip = pack.nodes.dual_controlnet_sampler.ZRealism_DualControlNetSampler.INPUT_TYPES()["optional"]["params"][1]["tooltip"]
    assert "REPLACE" in tip and "steps" in tip


def test_loader_lists_models_and_uses_comfy_device(pack, comfy_fakes, tiny_set):
    _install_models(comfy_fakes.models, tiny_set)
    spec = _loader(pack).INPUT_TYPES()["required"]
    assert "[diffusers] tiny-sd15" in spec["checkpoint"][0] and "tiny_ldm.safetensors" in spec["checkpoint"][0]
    assert spec["depth_controlnet"][0] == ["tiny_depth.safetensors", "tiny_openpose.safetensors"]
    assert spec["vae"][0] == ["none", "tiny_vae.safetensors"]
    pipe = _load(pack, vae="tiny_vae.safetensors")
    assert pipe.home_device.type == "cpu" and pipe.home_dtype == torch.float32  # ComfyUI said: CPU
    assert pipe.annotator_dirs is not None
    bridge = comfy_fakes.bridge
    comfy_fakes.model_management.FP16 = True
    assert bridge.engine_device_dtype("auto", "auto") == (torch.device("cpu"), torch.float32)  # CPU never fp16
    comfy_fakes.model_management.DEVICE = torch.device("cuda")
    assert bridge.engine_device_dtype("auto", "auto") == (torch.device("cuda"), torch.float16)
    assert bridge.engine_device_dtype("cpu", "bf16") == (torch.device("cpu"), "bf16")


def test_loader_errors_say_where_and_what(pack, comfy_fakes, tiny_set):
    ModelFileError = pack.zrealism_core.errors.ModelFileError  # the pack's own copy of the class
    _install_models(comfy_fakes.models, tiny_set)
    with pytest.raises(ModelFileError, match="control_v11f1p_sd15_depth") as e:
        _load(pack, depth_controlnet="none")
    assert str(comfy_fakes.models / "controlnet") in str(e.value)
    # a tiny single file loads with SD1.5 configs inside ComfyUI, so the tiny ControlNets do not fit it
    with pytest.raises(ModelFileError, match="another model family.*base model has 768"):
        _load(pack, checkpoint="tiny_ldm.safetensors")
    with pytest.raises(ModelFileError, match="ControlNet, not a base"):
        shutil.copy(tiny_set.depth_controlnet, comfy_fakes.models / "checkpoints" / "cn.safetensors")
        _load(pack, checkpoint="cn.safetensors")


def test_sampler_batch_memory_manager_and_progress(pack, comfy_fakes, tiny_set):
    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    image = torch.from_numpy(np.stack([rand_image(22, 30, 0)] * 2))  # the same picture twice
    mask = torch.ones(1, 22, 30)
    out, depth, pose, report = _sampler(pack).sample(pipe, image, mask=mask, depth_map=_maps(1), pose_map=_maps(2), **SAMPLE)
    assert out.shape == (2, 24, 32, 3) and depth.shape == pose.shape == (2, 24, 32, 3)
    assert (out[0] - out[1]).abs().max() > 1e-3  # image i uses seed + i
    # maps given, nets on: nothing switched off; the default preset's changes only
    assert report == "preset: balanced set control_reuse 1 -> 2, unet_reuse 1 -> 2, decode_channels_last True; preset quality runs every step in full"
    loads = [c for c in comfy_fakes.model_management.calls if c[0] == "load_models_gpu"]
    assert len(loads) == 2 and len(loads[0][1]) == 5 and loads[0][2]["force_full_load"]
    inner = {id(p.model.inner) for p in loads[0][1]}
    assert inner == {id(m) for m in pipe.modules().values()}
    bar = comfy_fakes.utils.bars[-1]
    assert bar.updates == [(i, 4) for i in range(1, 5)]  # 2 images x int(4 x 0.5) steps
    assert len(bar.previews) == 4 and bar.previews[0][0] == "JPEG" and bar.previews[0][1].size == (16, 12)  # latents
    lp = comfy_fakes.latent_preview  # the pictures come from ComfyUI's previewer, made once for the batch
    assert len(lp.calls) == 1 and [tuple(x.shape) for x in lp.decoded] == [(1, 4, 12, 16)] * 4


def test_sampler_params_override_widgets(pack, comfy_fakes, tiny_set):
    RecommendedParams = pack.zrealism_core.RecommendedParams

    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    params = RecommendedParams(depth_scale=0.0, pose_scale=0.0, denoise=1.0, steps=3, cfg=1.0, control_end=0.5)
    image = torch.from_numpy(rand_image(16, 16, 0)[None])
    out, _, _, _ = _sampler(pack).sample(pipe, image, depth_map=_maps(1, (16, 16)), pose_map=_maps(1, (16, 16)), params=params, **SAMPLE)
    assert comfy_fakes.utils.bars[-1].updates == [(1, 3), (2, 3), (3, 3)]
    merged = pack.zrealism_core.settings.apply_params(dict(SAMPLE), params)
    assert merged["depth_end"] == merged["pose_end"] == 0.5 and merged["steps"] == 3 and merged["cfg"] == 1.0


def test_sampler_cancel_stops_within_one_step(pack, comfy_fakes, tiny_set):
    _install_models(comfy_fakes.models, tiny_set)
    pipe = _load(pack)
    mm = comfy_fakes.model_management
    calls = []

    def press_cancel(module, args, output):
        calls.append(1)
        mm.interrupt_current_processing(True)  # the user presses Cancel during the first step

    h = pipe.sd.unet.register_forward_hook(press_cancel)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), depth_map=_maps(1, (16, 16)),
                                  pose_map=_maps(1, (16, 16)), **dict(SAMPLE, steps=10, denoise=1.0))
    finally:
        h.remove()
    assert len(calls) == 1
    mm.interrupt_current_processing(True)  # Cancel pressed before the node starts: nothing runs
    with pytest.raises(mm.InterruptProcessingException):
        _sampler(pack).sample(pipe, torch.from_numpy(rand_image(16, 16, 0)[None]), **SAMPLE)


REAL_COMFY_SCRIPT = textwrap.dedent(
    """
    import os, shutil, sys, tempfile
    comfy_dir, repo, models = sys.argv[1:4]
    sys.path.insert(0, comfy_dir)
    import comfy.options
    comfy.options.enable_args_parsing(False)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True
    import comfy.model_management as mm, comfy.utils, folder_paths, torch, numpy as np
    for name in ("diffusers", "controlnet", "vae"):
        folder_paths.add_model_folder_path(name, os.path.join(models, name), is_default=True)
    def hook(value, total, preview, node_id=None):  # what ComfyUI's server installs
        mm.throw_exception_if_processing_interrupted()
    comfy.utils.set_progress_bar_global_hook(hook)
    sys.path.append(repo)  # after ComfyUI's folder: its top-level `nodes` stays ComfyUI's
    from workflows.object_info import load_pack
    pack = load_pack()
    assert not pack.nodes.LOAD_ERRORS, pack.nodes.LOAD_ERRORS
    L = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_ModelLoader"]()
    S = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_DualControlNetSampler"]()
    pipe = L.load("[diffusers] tiny-sd15", "tiny_depth.safetensors", "tiny_openpose.safetensors", "none", "auto", "auto", True)[0]
    rng = np.random.RandomState(0)
    img = torch.from_numpy(rng.rand(2, 24, 32, 3).astype(np.float32))
    m = torch.from_numpy(rng.rand(1, 24, 32, 3).astype(np.float32))
    out, d, p, _ = S.sample(pipe, img, "photo", "", 1, 4, 7.0, 0.5, 0.7, 0.7, 0.0, 1.0, 0.0, 1.0, "euler", 0.0, depth_map=m, pose_map=m)
    assert tuple(out.shape) == (2, 24, 32, 3), out.shape
    loaded = [lm.model for lm in mm.current_loaded_models]
    patchers = list(pipe.extras["comfy_patchers"].values())  # {id(module): ModelPatcher}
    assert len(patchers) == len(pipe.modules()), (len(patchers), list(pipe.modules()))
    assert all(any(lm is pt for lm in loaded) for pt in patchers), "not tracked by ComfyUI"
    mm.interrupt_current_processing(True)
    try:
        S.sample(pipe, img, "photo", "", 1, 4, 7.0, 0.5, 0.7, 0.7, 0.0, 1.0, 0.0, 1.0, "euler", 0.0, depth_map=m, pose_map=m)
        raise SystemExit("cancel was ignored")
    except comfy.model_management.InterruptProcessingException:
        pass
    mm.unload_all_models()
    print("REAL_COMFYUI_OK", len(loaded))
    """
)


@pytest.mark.skipif(not os.environ.get("COMFYUI_DIR"), reason="set COMFYUI_DIR to a ComfyUI checkout to run")
def test_nodes_in_real_comfyui(tmp_path, tiny_set):
    models = tmp_path / "models"
    for name in ("diffusers", "controlnet", "vae", "checkpoints"):
        (models / name).mkdir(parents=True)
    _install_models(models, tiny_set)
    script = tmp_path / "run_real.py"
    script.write_text(REAL_COMFY_SCRIPT)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(script), os.environ["COMFYUI_DIR"], str(REPO), str(models)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert "REAL_COMFYUI_OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]
