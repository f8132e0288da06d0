"""Loading models offline from the files users have, and clear errors for the wrong ones."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fakes.engine_fixtures import _one_thread, rand_image, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import ModelFileError
from zrealism_core.models import loaders
from zrealism_core.testing import tiny_models as tm
from zrealism_core.engine import cached_pipelines, load_pipeline, transform, unload_pipeline


def _load(s, **kw):
    args = dict(device="cpu", config=s.config, cache=False)
    args.update(kw)
    base = args.pop("base", s.checkpoint)
    depth = args.pop("depth", s.depth_controlnet)
    pose = args.pop("pose", s.pose_controlnet)
    return load_pipeline(base, depth, pose, **args)


def test_tiny_ldm_single_file_loads_offline_bit_exact(tiny_set):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    pipe = _load(tiny_set)
    ref = tm.tiny_components(0)
    for name in ("unet", "vae", "text_encoder"):
        got, want = getattr(pipe.sd, name).state_dict(), ref[name].state_dict()
        assert set(want) <= set(got)
        assert all(torch.equal(got[k], want[k]) for k in want), name
    # the ControlNet written in the original layout and the one in the diffusers layout both round-trip
    for net, seed in zip(pipe.controlnets, (1, 2)):
        want = tm.tiny_controlnet(seed).state_dict()
        assert all(torch.equal(net.state_dict()[k], want[k]) for k in want)
    assert pipe.sd.tokenizer.model_max_length == 77
    assert type(pipe.sd.controlnet).__mro__[1].__name__ == "MultiControlNetModel"


def test_diffusers_folder_controlnet_folder_and_separate_vae(tiny_set, tmp_path):
    cn_folder = tm.write_tiny_controlnet(tmp_path / "cn-folder", "folder", seed=3)
    pipe = _load(tiny_set, base=tiny_set.diffusers, pose=cn_folder, vae=tiny_set.vae, config=None)
    want_vae = tm.tiny_vae(5).state_dict()
    assert all(torch.equal(pipe.sd.vae.state_dict()[k], want_vae[k]) for k in want_vae)
    r = transform(pipe, rand_image(16, 16, 0), depth_map=rand_image(16, 16, 1), pose_map=rand_image(16, 16, 2), steps=2, denoise=0.5)
    assert r.image.shape == (16, 16, 3)


def test_unprefixed_original_controlnet_and_ckpt_base(tiny_set, tmp_path):
    cn = tm.tiny_controlnet(4)
    sd = tm.controlnet_to_ldm(cn.state_dict(), cn.config, prefix="")  # keys like `input_hint_block.0.weight`
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "cn_noprefix.safetensors"))
    c = tm.tiny_components(0)
    torch.save(tm.ldm_checkpoint(c["unet"], c["vae"], c["text_encoder"]), tmp_path / "base.ckpt")
    pipe = _load(tiny_set, base=tmp_path / "base.ckpt", depth=tmp_path / "cn_noprefix.safetensors")
    want = cn.state_dict()
    assert all(torch.equal(pipe.controlnets[0].state_dict()[k], want[k]) for k in want)


def test_bf16_load(tiny_set):
    pipe = _load(tiny_set, dtype="bf16")
    assert pipe.dtype == torch.bfloat16 and pipe.controlnets[1].dtype == torch.bfloat16
    r = transform(pipe, rand_image(16, 16, 0), depth_map=rand_image(16, 16, 1), pose_map=rand_image(16, 16, 2), steps=2, denoise=0.5)
    assert r.dtype == "bf16" and np.isfinite(r.image).all()


def test_cache_and_explicit_unload(tiny_set):
    unload_pipeline()
    a = _load(tiny_set, cache=True)
    b = _load(tiny_set, cache=True)
    assert a is b and a in cached_pipelines()
    assert unload_pipeline(a) == 1 and a not in cached_pipelines()
    with pytest.raises(Exception, match="unloaded"):
        transform(a, rand_image(16, 16, 0))
    c = _load(tiny_set, cache=True)
    assert c is not a
    unload_pipeline()


def test_missing_files_name_the_file_folder_and_download(tiny_set, tmp_path):
    with pytest.raises(ModelFileError) as e:
        _load(tiny_set, base=tmp_path / "nope.safetensors")
    msg = str(e.value)
    assert "nope.safetensors" in msg and "models/checkpoints" in msg and "v1-5" in msg
    with pytest.raises(ModelFileError) as e:
        _load(tiny_set, depth=tmp_path / "missing_depth.safetensors")
    assert "missing_depth" in str(e.value) and "models/controlnet" in str(e.value) and "control_v11f1p_sd15_depth" in str(e.value)
    with pytest.raises(ModelFileError) as e:
        _load(tiny_set, pose=None)
    assert "control_v11p_sd15_openpose" in str(e.value)
    with pytest.raises(ModelFileError, match="models/vae"):
        _load(tiny_set, vae=tmp_path / "vae.safetensors")


def test_corrupt_and_unsafe_files(tiny_set, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(os.urandom(2048))
    with pytest.raises(ModelFileError, match="broken.safetensors.*(corrupt|truncated)"):
        _load(tiny_set, base=bad)
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(tiny_set.depth_controlnet.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="trunc.safetensors"):
        _load(tiny_set, depth=trunc)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        _load(tiny_set, base=empty)
    # a pickle with code in it is refused, never executed
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": _Evil()}, evil)
    with pytest.raises(ModelFileError, match="never unpickles"):
        _load(tiny_set, base=evil)
    notmodel = tmp_path / "x.ckpt"
    notmodel.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelFileError, match="x.ckpt"):
        _load(tiny_set, base=notmodel)


class _Evil:
    pass


def _fake_file(path, keys):
    save_file({k: torch.zeros(shape) for k, shape in keys.items()}, str(path))
    return path


def test_sdxl_and_wrong_family_files_are_rejected(tiny_set, tmp_path):
    sdxl = _fake_file(tmp_path / "sd_xl_base_1.0.safetensors", {
        "conditioner.embedders.1.model.positional_embedding": (77, 1280),
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
    })
    with pytest.raises(ModelFileError, match="SDXL.*SD1.5"):
        _load(tiny_set, base=sdxl)
    sd2 = _fake_file(tmp_path / "v2-1.safetensors", {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
        "cond_stage_model.model.token_embedding.weight": (49408, 1024),
    })
    with pytest.raises(ModelFileError, match="SD2"):
        _load(tiny_set, base=sd2)
    # a ControlNet given as the base, and the base given as a ControlNet
    with pytest.raises(ModelFileError, match="ControlNet, not a base checkpoint.*models/controlnet"):
        _load(tiny_set, base=tiny_set.depth_controlnet)
    with pytest.raises(ModelFileError, match="not a ControlNet"):
        _load(tiny_set, pose=tiny_set.checkpoint)
    cn_xl = _fake_file(tmp_path / "controlnet-sdxl.safetensors", {
        "controlnet_cond_embedding.conv_in.weight": (16, 3, 3, 3),
        "add_embedding.linear_1.weight": (1280, 2816),
    })
    with pytest.raises(ModelFileError, match="SDXL ControlNet"):
        _load(tiny_set, depth=cn_xl)
    # an SD1.5 ControlNet (cross-attention 768) next to the tiny base (32): another family
    cn15 = _fake_file(tmp_path / "control_v11p_sd15_openpose.safetensors", {
        "control_model.input_hint_block.0.weight": (16, 3, 3, 3),
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    })
    with pytest.raises(ModelFileError, match="another model family.*768"):
        _load(tiny_set, pose=cn15)
    lora = _fake_file(tmp_path / "some_lora.safetensors", {"lora_unet_down_blocks_0.lora_down.weight": (4, 320)})
    with pytest.raises(ModelFileError, match="LoRA"):
        _load(tiny_set, depth=lora)


def test_sdxl_diffusers_folder_rejected(tmp_path):
    folder = tmp_path / "sdxl"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": 2048, "addition_embed_type": "text_time"}))
    with pytest.raises(ModelFileError, match="SDXL"):
        loaders.check_base(folder)
    with pytest.raises(ModelFileError, match="model_index.json"):
        loaders.check_base(tmp_path)


def test_shipped_sd15_config_folder():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    cfg = loaders.config_folder(None)
    unet = UNet2DConditionModel.load_config(str(cfg), subfolder="unet")
    vae = AutoencoderKL.load_config(str(cfg), subfolder="vae")
    assert unet["cross_attention_dim"] == 768 and list(unet["block_out_channels"]) == [320, 640, 1280, 1280]
    assert vae["scaling_factor"] == 0.18215 and vae["latent_channels"] == 4
    tc = json.loads((cfg / "text_encoder" / "config.json").read_text())
    assert (tc["hidden_size"], tc["num_hidden_layers"], tc["vocab_size"]) == (768, 12, 49408)
    tok = loaders.tokenizer_for(cfg)
    assert tok.model_max_length == 77 and tok("a photo").input_ids[0] == 49406


def test_ldm_key_mapping_matches_diffusers_for_real_sd15_shapes():
    """Our diffusers->LDM names are the exact inverse of diffusers' own LDM->diffusers conversion,
    checked on the real SD1.5 layout with shape-only (meta) tensors."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu

    with torch.device("meta"):
        unet = UNet2DConditionModel(**tm.SD15_UNET_CONFIG)
        vae = AutoencoderKL(**tm.SD15_VAE_CONFIG)
        cn = ControlNetModel.from_unet(unet)
    for model, to_ldm, back in (
        (unet, lambda sd: tm.unet_to_ldm(sd, unet.config), lambda ldm: sfu.convert_ldm_unet_checkpoint(ldm, unet.config)),
        (vae, lambda sd: tm.vae_to_ldm(sd, vae.config), lambda ldm: sfu.convert_ldm_vae_checkpoint(ldm, vae.config)),
        (cn, lambda sd: tm.controlnet_to_ldm(sd, cn.config), lambda ldm: sfu.convert_controlnet_checkpoint(ldm, cn.config)),
    ):
        sd = model.state_dict()
        ldm = to_ldm(sd)
        assert len(ldm) == len(sd)
        round_trip = back(ldm)
        assert set(round_trip) == set(sd), type(model).__name__
        assert all(tuple(round_trip[k].shape) == tuple(sd[k].shape) for k in sd)
    # spot checks against the names in real SD1.5 / ControlNet files
    ldm_unet = tm.unet_to_ldm(unet.state_dict(), unet.config)
    assert "model.diffusion_model.output_blocks.11.0.skip_connection.weight" in ldm_unet  # the key diffusers uses to spot SD1.x
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in ldm_unet
    assert "model.diffusion_model.output_blocks.5.2.conv.weight" in ldm_unet
    assert "first_stage_model.decoder.up.3.upsample.conv.weight" in tm.vae_to_ldm(vae.state_dict(), vae.config)
    assert "control_model.input_hint_block.14.weight" in tm.controlnet_to_ldm(cn.state_dict(), cn.config)


@pytest.mark.parametrize("layout", ["single_file", "folder"])
def test_base_is_checked_once_per_load(tiny_set, tmp_path, monkeypatch, layout):
    """check_base reads the file's header and classifies it: once per load is enough."""
    calls = []
    real = loaders.check_base
    monkeypatch.setattr(loaders, "check_base", lambda path: calls.append(path) or real(path))
    base = tiny_set.checkpoint if layout == "single_file" else tm.write_tiny_diffusers_folder(tmp_path / "sd")
    _load(tiny_set, base=base)
    assert len(calls) == 1, calls
