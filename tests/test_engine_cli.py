"""`zrealism transform` end to end with tiny models (and the detectors' tiny weights)."""
from __future__ import annotations

import numpy as np
import pytest

from fakes.engine_fixtures import _one_thread, rand_image, tiny_set  # noqa: F401 (fixtures)
from zrealism_core.cli import main
from zrealism_core.imaging.images import load_image, save_image


@pytest.fixture
def files(tmp_path):
    save_image(rand_image(30, 38, 0), tmp_path / "in.png")
    save_image(rand_image(30, 38, 1), tmp_path / "depth.png")
    save_image(rand_image(30, 38, 2), tmp_path / "pose.png")
    return tmp_path


def _args(s, f, *extra):
    return ["transform", str(f / "in.png"), "-o", str(f / "out.png"), "--checkpoint", str(s.checkpoint),
            "--config", str(s.config), "--depth-controlnet", str(s.depth_controlnet),
            "--pose-controlnet", str(s.pose_controlnet), "--device", "cpu", "--steps", "4", "--denoise", "0.5", "-q", *extra]


def test_cli_transform_with_given_maps(tiny_set, files, capsys):
    rc = main(_args(tiny_set, files, "--depth-map", str(files / "depth.png"), "--pose-map", str(files / "pose.png"),
                    "--seed", "7", "--scheduler", "euler", "--pose-map-out", str(files / "pose_used.png")))
    assert rc == 0
    out = load_image(files / "out.png")
    assert out.shape == (32, 40, 3)
    assert load_image(files / "pose_used.png").shape == (32, 40, 3)
    assert "2 steps on cpu fp32" in capsys.readouterr().out


def test_cli_transform_detects_depth_from_annotator_folder(tiny_set, files, tmp_path):
    from zrealism_core.testing.tiny_annotators import write_tiny_depth_anything

    ann = tmp_path / "annotators"
    write_tiny_depth_anything(ann)  # (OpenPose's real-size files are slow to write: the pose map is given)
    rc = main(_args(tiny_set, files, "--annotators", str(ann), "--pose-map", str(files / "pose.png"),
                    "--depth-map-out", str(files / "d.png")))
    assert rc == 0
    d = load_image(files / "d.png")
    assert d.shape == (32, 40, 3) and float(np.ptp(d)) > 0  # a real (random-weight) depth map, not a constant


def test_cli_missing_models_exit_2_with_message(tiny_set, files, tmp_path, capsys):
    rc = main(_args(tiny_set, files, "--depth-map", str(files / "depth.png"), "--annotators", str(tmp_path / "none")))
    err = capsys.readouterr().err
    assert rc == 2 and "OpenPose" in err and "pose_map" in err  # no pose weights: says what to put where
    args = _args(tiny_set, files)
    args[args.index("--checkpoint") + 1] = str(tmp_path / "missing.safetensors")
    assert main(args) == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_cli_transform_with_a_detail_controlnet(tiny_set, files):
    maps = ("--depth-map", str(files / "depth.png"), "--pose-map", str(files / "pose.png"))
    assert main(_args(tiny_set, files, *maps, "-o", str(files / "plain.png"))) == 0
    rc = main(_args(tiny_set, files, *maps, "--detail-controlnet", str(tiny_set.detail_controlnet),
                    "--detail-scale", "1.0", "--detail-hint", "tile", "--detail-map-out", str(files / "hint.png")))
    assert rc == 0
    assert load_image(files / "hint.png").shape == (32, 40, 3)  # tile = the image at the job's size
    assert np.abs(load_image(files / "out.png") - load_image(files / "plain.png")).max() > 1e-3
