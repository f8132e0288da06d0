"""zrealism_core.models.motion: motion modules, motion LoRAs and SparseCtrl from files laid out like the
real downloads (guoyww's original keys), offline, with clear errors."""
from __future__ import annotations

import pytest
import torch

from zrealism_core import ModelFileError, ZRealismError
from zrealism_core.models import motion
from zrealism_core.models.motion import (
    MotionModel, as_motion_model, infer_motion_config, load_motion_adapter, load_motion_lora, load_sparsectrl,
)
from zrealism_core.testing.tiny_motion import (
    motion_to_original, tiny_motion_adapter, tiny_motion_lora_state_dict, tiny_sparsectrl,
    write_tiny_motion_adapter, write_tiny_motion_lora, write_tiny_sparsectrl,
)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return set(sa) == set(sb) and all(torch.equal(sa[k], sb[k].to(sa[k].dtype)) for k in sa)


def test_original_single_file_loads_offline_with_inferred_config(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write_tiny_motion_adapter(tmp_path / "mm_sd_v15_v2.safetensors", seed=5, max_seq_length=24)
    loaded = load_motion_adapter(path)
    ref = tiny_motion_adapter(5, max_seq_length=24)
    assert _same_weights(loaded, ref)  # position tables recomputed identically
    cfg = loaded.config
    assert tuple(cfg.block_out_channels) == (32, 64) and cfg.motion_layers_per_block == 2
    assert cfg.motion_max_seq_length == 24 and cfg.use_motion_mid_block
    assert not any(t.is_meta for t in loaded.state_dict().values())


def test_diffusers_folder_and_diffusers_keyed_file(tmp_path):
    folder = write_tiny_motion_adapter(tmp_path / "animatediff-motion-adapter", layout="folder", seed=6)
    assert _same_weights(load_motion_adapter(folder), tiny_motion_adapter(6))
    from safetensors.torch import save_file

    flat = tmp_path / "mm_diffusers_keys.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_motion_adapter(6).state_dict().items()}, str(flat))
    assert _same_weights(load_motion_adapter(flat), tiny_motion_adapter(6))


def test_fp16_file_keeps_its_precision_unless_asked(tmp_path):
    from safetensors.torch import save_file

    sd = {k: v.half().contiguous() for k, v in motion_to_original(tiny_motion_adapter(7).state_dict()).items()}
    p = tmp_path / "mm_fp16.safetensors"
    save_file(sd, str(p))
    assert load_motion_adapter(p).dtype == torch.float16
    assert load_motion_adapter(p, dtype=torch.float32).dtype == torch.float32


def test_v1_v3_layout_without_mid_block(tmp_path):
    ad = tiny_motion_adapter(8, use_motion_mid_block=False)
    from safetensors.torch import save_file

    p = tmp_path / "v3_sd15_mm.safetensors"
    save_file({k: v.contiguous() for k, v in motion_to_original(ad.state_dict()).items()}, str(p))
    loaded = load_motion_adapter(p)
    assert not loaded.config.use_motion_mid_block
    assert _same_weights(loaded, ad)


def test_ckpt_is_read_without_unpickling_code(tmp_path):
    p = tmp_path / "mm_sd_v15_v2.ckpt"
    torch.save({"state_dict": motion_to_original(tiny_motion_adapter(3).state_dict())}, str(p))
    assert _same_weights(load_motion_adapter(p), tiny_motion_adapter(3))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.ckpt"
    torch.save({"x": Evil()}, str(bad))
    with pytest.raises(ModelFileError, match="could not be read"):
        load_motion_adapter(bad)


def test_wrong_files_give_clear_errors(tmp_path):
    with pytest.raises(ModelFileError, match=r"not found.*animatediff_models.*guoyww/animatediff"):
        load_motion_adapter(tmp_path / "mm_sd_v15_v2.ckpt")
    lora = write_tiny_motion_lora(tmp_path / "v2_lora_ZoomIn.safetensors")
    with pytest.raises(ModelFileError, match="motion LoRA, not a motion module.*animatediff_motion_lora"):
        load_motion_adapter(lora)
    from safetensors.torch import save_file

    sd_ckpt = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, str(sd_ckpt))
    with pytest.raises(ModelFileError, match="Stable Diffusion checkpoint.*models/checkpoints"):
        load_motion_adapter(sd_ckpt)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelFileError, match="no config.json"):
        load_motion_adapter(tmp_path / "folder")
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(ModelFileError, match="not a weights file"):
        load_motion_adapter(txt)


def test_motion_lora_original_and_diffusers_layouts_agree(tmp_path):
    a = load_motion_lora(write_tiny_motion_lora(tmp_path / "v2_lora_PanLeft.ckpt.safetensors", "original"), 0.7)
    b = load_motion_lora(write_tiny_motion_lora(tmp_path / "diffusers_lora.safetensors", "diffusers"))
    assert a.strength == 0.7 and a.name == "v2_lora_PanLeft_ckpt"
    assert set(a.state_dict) == set(b.state_dict) == set(tiny_motion_lora_state_dict())
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


def test_motion_lora_errors(tmp_path, monkeypatch):
    mm = write_tiny_motion_adapter(tmp_path / "mm.safetensors")
    with pytest.raises(ModelFileError, match="no LoRA tensors.*animatediff_models"):
        load_motion_lora(mm)
    from safetensors.torch import save_file

    image_lora = tmp_path / "style_lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)}, str(image_lora))
    with pytest.raises(ModelFileError, match="not a motion LoRA.*animatediff_motion_lora"):
        load_motion_lora(image_lora)
    monkeypatch.setattr(motion, "peft_available", lambda: False)
    with pytest.raises(ZRealismError, match="pip install peft"):
        load_motion_lora(write_tiny_motion_lora(tmp_path / "l.safetensors"))


def test_sparsectrl_folder_and_errors(tmp_path):
    folder = write_tiny_sparsectrl(tmp_path / "animatediff-sparsectrl-rgb")
    model = load_sparsectrl(folder)
    assert _same_weights(model, tiny_sparsectrl())
    with pytest.raises(ModelFileError, match="diffusers folder"):
        load_sparsectrl(write_tiny_motion_adapter(tmp_path / "x.safetensors"))
    from diffusers import SparseControlNetModel
    from zrealism_core.testing.tiny_motion import TINY_SPARSECTRL_CONFIG

    torch.manual_seed(0)
    scribble = SparseControlNetModel(**dict(TINY_SPARSECTRL_CONFIG, conditioning_channels=3, use_simplified_condition_embedding=False))
    scribble.save_pretrained(tmp_path / "scribble")
    with pytest.raises(ModelFileError, match="RGB SparseCtrl"):
        load_sparsectrl(tmp_path / "scribble")


def test_as_motion_model_and_inferred_config():
    ad = tiny_motion_adapter()
    m = as_motion_model(ad)
    assert isinstance(m, MotionModel) and m.adapter is ad and m.max_frames == 32
    assert as_motion_model(m) is m
    cfg = infer_motion_config(ad.state_dict())
    assert cfg["block_out_channels"] == (32, 64) and cfg["motion_layers_per_block"] == 2
    assert cfg["motion_transformer_layers_per_block"] == 1 and cfg["use_motion_mid_block"]
