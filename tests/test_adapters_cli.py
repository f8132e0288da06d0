"""The CLI's --lora FILE[:STRENGTH] / --ip-adapter / --clip-vision / --ip-weight flags (transform and run)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakes.engine_fixtures import _one_thread, rand_image, tiny_set  # noqa: F401 (fixtures)
from test_cli_run import RUN_FAST, models_dir  # noqa: F401 (fixture)
from test_engine_cli import _args
from zrealism_core.cli import main
from zrealism_core.commands.adapters import parse_lora
from zrealism_core.imaging.images import load_image, save_image
from zrealism_core.testing import tiny_ip_adapter as tip
from zrealism_core.testing import tiny_loras


@pytest.fixture
def files(tmp_path):
    save_image(rand_image(30, 38, 0), tmp_path / "in.png")
    save_image(rand_image(30, 38, 1), tmp_path / "depth.png")
    save_image(rand_image(30, 38, 2), tmp_path / "pose.png")
    tiny_loras.write_kohya_lora(tmp_path / "realism.safetensors")
    tip.write_tiny_ip_adapter(tmp_path / "ip-adapter-plus_tiny.safetensors", "plus")
    tip.write_tiny_clip_vision(tmp_path / "clip-vision.safetensors")
    return tmp_path


def test_parse_lora():
    assert parse_lora("a.safetensors:0.5") == (Path("a.safetensors"), 0.5)
    assert parse_lora("a.safetensors") == (Path("a.safetensors"), 1.0)
    assert parse_lora("dir:x/a.safetensors") == (Path("dir:x/a.safetensors"), 1.0)
    assert parse_lora(r"C:\loras\a.safetensors:-1") == (Path(r"C:\loras\a.safetensors"), -1.0)
    assert parse_lora(r"C:\loras\a.safetensors") == (Path(r"C:\loras\a.safetensors"), 1.0)


def _transform(s, f, name, *extra):
    maps = ("--depth-map", str(f / "depth.png"), "--pose-map", str(f / "pose.png"))
    args = _args(s, f, *maps, *extra)
    args[args.index("-o") + 1] = str(f / name)
    assert main(args) == 0
    return np.asarray(load_image(f / name))


def test_transform_flags(tiny_set, files):
    plain = _transform(tiny_set, files, "plain.png")
    lora = str(files / "realism.safetensors")
    assert np.array_equal(_transform(tiny_set, files, "zero.png", "--lora", lora + ":0"), plain)
    one = _transform(tiny_set, files, "one.png", "--lora", lora)
    assert not np.array_equal(one, plain)
    two = _transform(tiny_set, files, "two.png", "--lora", lora + ":0.5", "--lora", lora + ":0.5")
    assert np.abs(two.astype(int) - one.astype(int)).max() <= 1  # 0.5 + 0.5 = 1 (up to rounding)
    ip = ("--ip-adapter", str(files / "ip-adapter-plus_tiny.safetensors"), "--clip-vision", str(files / "clip-vision.safetensors"))
    assert np.array_equal(_transform(tiny_set, files, "ip0.png", *ip, "--ip-weight", "0"), plain)
    assert not np.array_equal(_transform(tiny_set, files, "ip1.png", *ip, "--ip-weight", "1"), plain)


def test_transform_flag_errors(tiny_set, files, capsys):
    maps = ("--depth-map", str(files / "depth.png"), "--pose-map", str(files / "pose.png"))
    assert main(_args(tiny_set, files, *maps, "--clip-vision", str(files / "clip-vision.safetensors"))) == 2
    assert "--ip-adapter" in capsys.readouterr().err
    assert main(_args(tiny_set, files, *maps, "--ip-adapter", str(files / "ip-adapter-plus_tiny.safetensors"))) == 2
    assert "needs its image encoder" in capsys.readouterr().err
    tiny_loras.write_sdxl_lora(files / "xl.safetensors")
    assert main(_args(tiny_set, files, *maps, "--lora", str(files / "xl.safetensors"))) == 2
    assert "xl.safetensors is a LoRA for SDXL" in capsys.readouterr().err
    assert not (files / "out.png").exists()


def test_run_with_lora_and_ip_adapter(models_dir, files, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    rc = main(["run", "--sample", "--models", str(models_dir), "--out", str(out), "--lora", str(files / "realism.safetensors") + ":0.8",
               "--ip-adapter", str(files / "ip-adapter-plus_tiny.safetensors"), "--clip-vision", str(files / "clip-vision.safetensors"),
               "--ip-weight", "1"] + RUN_FAST)
    assert rc == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["options"]["loras"][0][1] == 0.8 and doc["options"]["ip_adapter"].endswith("ip-adapter-plus_tiny.safetensors")
    assert main(["run", "--sample", "--models", str(models_dir), "--out", str(tmp_path / "plain")] + RUN_FAST) == 0
    assert not np.array_equal(np.asarray(load_image(out / "result.png")), np.asarray(load_image(tmp_path / "plain" / "result.png")))
