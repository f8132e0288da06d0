"""LoRA views on tiny models: strength 0 == no LoRA, strength 1 changes the output, the base pipe is
bit-identical after a job, two views alternate, each file format loads, bad files are refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes.engine_fixtures import _one_thread, rand_image, tiny_pipe, tiny_set  # noqa: F401 (fixtures)
from zrealism_core import InputError, ModelFileError
from zrealism_core.engine import ZRealismPipeline, transform
from zrealism_core.engine.pipeline import PipelineView
from zrealism_core.testing import tiny_loras

IMG = rand_image(32, 32, 0)


def run(pipe, prompt="a photo"):
    return transform(pipe, IMG, depth_map=IMG, pose_map=IMG, prompt=prompt, steps=2, denoise=1.0, seed=3).image


def weights(pipe):
    return {k: v.detach().clone() for m in ("unet", "text_encoder") for k, v in getattr(pipe.sd, m).state_dict().items()}


@pytest.fixture(scope="module")
def lora_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    return dict(
        kohya=tiny_loras.write_kohya_lora(d / "tiny-kohya.safetensors"),
        kohya_pt=tiny_loras.write_kohya_lora(d / "tiny-kohya.pt", seed=11),
        peft=tiny_loras.write_peft_lora(d / "tiny-peft.safetensors"),
        loha=tiny_loras.write_loha_lora(d / "tiny-loha.safetensors"),
        sdxl=tiny_loras.write_sdxl_lora(d / "tiny-sdxl-lora.safetensors"),
    )


def test_strength_zero_is_plain_and_one_changes(tiny_pipe, lora_files):
    plain = run(tiny_pipe)
    zero = tiny_pipe.with_lora(lora_files["kohya"], 0.0)
    one = tiny_pipe.with_lora(lora_files["kohya"], 1.0)
    assert isinstance(one, ZRealismPipeline) and isinstance(one, PipelineView)
    assert np.array_equal(run(zero), plain)
    changed = run(one)
    assert np.abs(changed - plain).max() > 1e-3
    assert np.array_equal(run(tiny_pipe), plain)  # the base pipe after a LoRA job: bit-identical


def test_weights_restored_exactly_and_file_read_once(tiny_pipe, lora_files):
    from zrealism_core.adapters.views import restore_weights

    before = weights(tiny_pipe)
    view = tiny_pipe.with_lora(lora_files["kohya"], 0.7)
    run(view)
    patched = weights(tiny_pipe)  # kept for the next job with the same LoRA, as ComfyUI does
    assert any(not torch.equal(before[k], patched[k]) for k in before)
    run(tiny_pipe)  # a job on the plain pipe puts the originals back first
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_pipe).items())
    run(view)
    restore_weights(view)  # or at once, for code that uses pipe.sd directly
    assert all(torch.equal(before[k], v) for k, v in weights(tiny_pipe).items())
    again = tiny_pipe.with_lora(lora_files["kohya"], 0.3)
    assert again.loras[0][0] is view.loras[0][0]  # loaded once per file, per pipeline


def test_the_same_loras_are_applied_once_for_consecutive_jobs(tiny_pipe, lora_files):
    view = tiny_pipe.with_lora(lora_files["kohya"], 0.7)
    twin = tiny_pipe.with_lora(lora_files["kohya"], 0.7)  # another view, the same file and strength
    other = tiny_pipe.with_lora(lora_files["kohya"], 0.4)

    def steps(pipe):
        return {k for k in transform(pipe, IMG, depth_map=IMG, pose_map=IMG, prompt="a photo", steps=2, denoise=1.0,
                                     seed=3).timings if "LoRA" in k}

    first = steps(view)
    assert "applying LoRAs" in first
    assert steps(view) == set() and steps(twin) == set()  # nothing to switch
    assert steps(other) == {"restoring LoRA weights", "applying LoRAs"}
    assert steps(tiny_pipe) == {"restoring LoRA weights"}
    assert steps(tiny_pipe) == set()


def test_two_views_alternate(tiny_pipe, lora_files):
    a = tiny_pipe.with_lora(lora_files["kohya"], 0.5)
    b = tiny_pipe.with_lora(lora_files["kohya"], 1.5)
    ra, rb = run(a), run(b)
    assert not np.array_equal(ra, rb)
    assert np.array_equal(run(a), ra)
    assert np.array_equal(run(b), rb)


def test_chained_loras_and_text_encoder_part(tiny_pipe, lora_files):
    chained = tiny_pipe.with_lora(lora_files["kohya"], 1.0).with_lora(lora_files["peft"], 1.0)
    assert [s for _, s in chained.loras] == [1.0, 1.0]
    assert not np.array_equal(run(chained), run(tiny_pipe.with_lora(lora_files["kohya"], 1.0)))
    lf = chained.loras[0][0]
    assert lf.targets() == ["text_encoder", "unet"]
    assert any(l.parts["down"].dim() == 4 for l in lf.layers)  # LoCon-style conv layers were read


@pytest.mark.parametrize("kind", ["peft", "loha", "kohya_pt"])
def test_other_formats_change_the_output(tiny_pipe, lora_files, kind):
    plain = run(tiny_pipe)
    assert np.abs(run(tiny_pipe.with_lora(lora_files[kind], 1.0)) - plain).max() > 1e-3
    assert np.array_equal(run(tiny_pipe), plain)


def test_negative_strength_and_bad_strength(tiny_pipe, lora_files):
    plain = run(tiny_pipe)
    assert not np.array_equal(run(tiny_pipe.with_lora(lora_files["kohya"], -1.0)), plain)
    for bad in (5.0, float("nan"), "x"):
        with pytest.raises(InputError):
            tiny_pipe.with_lora(lora_files["kohya"], bad)


def test_sdxl_lora_rejected_naming_file(tiny_pipe, lora_files):
    before = weights(tiny_pipe)
    with pytest.raises(ModelFileError, match=r"tiny-sdxl-lora\.safetensors.*SDXL"):
        tiny_pipe.with_lora(lora_files["sdxl"], 1.0)
    after = weights(tiny_pipe)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lora_for_other_shapes_rejected(tiny_pipe, tmp_path):
    from zrealism_core.testing.tiny_models import TINY_UNET_CONFIG

    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    other = UNet2DConditionModel(**dict(TINY_UNET_CONFIG, cross_attention_dim=48))  # another "family"
    path = tiny_loras.write_kohya_lora(tmp_path / "other-family.safetensors", unet=other)
    with pytest.raises(ModelFileError, match=r"other-family\.safetensors does not fit"):
        tiny_pipe.with_lora(path, 1.0)


def test_corrupt_and_checkpoint_as_lora(tiny_pipe, tiny_set, lora_files, tmp_path):
    data = lora_files["kohya"].read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="truncated.safetensors"):
        tiny_pipe.with_lora(bad, 1.0)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a file at all" * 10)
    with pytest.raises(ModelFileError, match="junk.safetensors"):
        tiny_pipe.with_lora(junk, 1.0)
    with pytest.raises(ModelFileError, match=r"tiny-sd15\.safetensors is a full SD15 model checkpoint, not a LoRA"):
        tiny_pipe.with_lora(tiny_set.checkpoint, 1.0)
    with pytest.raises(ModelFileError, match="not found"):
        tiny_pipe.with_lora(tmp_path / "missing.safetensors", 1.0)


def test_lora_chosen_as_checkpoint(lora_files, tiny_set):
    from zrealism_core.engine import load_pipeline

    with pytest.raises(ModelFileError, match=r"tiny-kohya\.safetensors is a LoRA.*models/loras"):
        load_pipeline(lora_files["kohya"], tiny_set.depth_controlnet, tiny_set.pose_controlnet, device="cpu",
                      config=tiny_set.config, cache=False)


def test_lora_reaches_the_clip_and_the_plain_clip_is_unchanged(tiny_pipe, lora_files):
    from zrealism_core.animation import animate
    from zrealism_core.testing.tiny_motion import tiny_motion_adapter

    adapter = tiny_motion_adapter(max_seq_length=8)

    def clip(pipe):
        frames = animate(pipe, IMG, motion_adapter=adapter, frames=2, steps=2, strength=1.0, cfg=1.0, seed=0,
                         depth_map=IMG, pose_map=IMG, color_lock=0.0)
        return np.stack(frames)

    plain = clip(tiny_pipe)
    with_lora = clip(tiny_pipe.with_lora(lora_files["kohya"], 1.0))
    assert np.abs(with_lora - plain).max() > 1e-3
    assert np.array_equal(clip(tiny_pipe), plain)


def _renamed(sd, rename):
    """The same tensors under other layer names (rename: module key -> new module key)."""
    out = {}
    for key, value in sd.items():
        module, _, part = key.partition(".")
        out[rename(module) + "." + part] = value
    return out


def test_ldm_named_lora_is_the_same_lora(tiny_pipe, tmp_path):
    """ComfyUI's LoRA saver and some trainers name UNet layers in the original layout
    (`lora_unet_input_blocks_4_1_proj_in`, `diffusion_model.input_blocks.4.1.proj_in`): the same
    tensors under those names give bit-identically the diffusers-named LoRA's result."""
    from safetensors.torch import save_file

    from zrealism_core.models.ldm_keys import unet_module_names_to_ldm

    names = unet_module_names_to_ldm(tiny_pipe.sd.unet)
    assert names["down_blocks.1.attentions.0.proj_in"] == "input_blocks.4.1.proj_in"  # the original layout's numbering
    assert names["up_blocks.0.upsamplers.0.conv"] == "output_blocks.2.2.conv"
    under_map = {"lora_unet_" + k.replace(".", "_"): v for k, v in names.items()}
    sd = tiny_loras.kohya_state_dict(tiny_pipe.sd.unet, tiny_pipe.sd.text_encoder)
    under = _renamed(sd, lambda m: "lora_unet_" + under_map[m].replace(".", "_") if m in under_map else m)
    dotted = _renamed(sd, lambda m: "diffusion_model." + under_map[m] if m in under_map else m)
    assert any(k.startswith("lora_unet_input_blocks_4_1_") for k in under)
    paths = {}
    for label, state in (("diffusers", sd), ("ldm_under", under), ("ldm_dotted", dotted)):
        paths[label] = tmp_path / f"{label}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(paths[label]))
    plain = run(tiny_pipe)
    want_view = tiny_pipe.with_lora(paths["diffusers"], 1.0)
    want = run(want_view)
    assert np.abs(want - plain).max() > 1e-3
    for label in ("ldm_under", "ldm_dotted"):
        view = tiny_pipe.with_lora(paths[label], 1.0)
        assert len(view.loras[0][0].layers) == len(want_view.loras[0][0].layers)
        assert np.array_equal(run(view), want), label


def test_text_encoder_keys_with_and_without_text_model_level(tiny_pipe, tmp_path):
    """Real kohya files write `lora_te_text_model_encoder_layers_0_...`; transformers >= 5.6 names the module
    `encoder.layers.0...`. Both spellings load and give the same result; the text-encoder part takes effect."""
    from safetensors.torch import save_file

    sd = tiny_loras.kohya_state_dict(tiny_pipe.sd.unet, tiny_pipe.sd.text_encoder)
    te = {k: v for k, v in sd.items() if k.startswith("lora_te_")}
    assert te and all(k.startswith("lora_te_text_model_encoder_layers_") for k in te)
    short = {k.replace("lora_te_text_model_", "lora_te_"): v for k, v in te.items()}
    for label, state in (("long", te), ("short", short)):
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / f"{label}.safetensors"))
    plain = run(tiny_pipe)
    long_out = run(tiny_pipe.with_lora(tmp_path / "long.safetensors", 1.0))
    assert np.abs(long_out - plain).max() > 1e-3  # text encoder only: the prompt's encoding changed
    assert np.array_equal(run(tiny_pipe.with_lora(tmp_path / "short.safetensors", 1.0)), long_out)
