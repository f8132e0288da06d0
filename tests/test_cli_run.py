"""`zrealism run` / `zrealism selftest` end to end on tiny random-weight models, exit codes, and
node/CLI parity (issue 7)."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from zrealism_core.cli import main
from zrealism_core.commands.selftest import write_tiny_models_dir
from zrealism_core.imaging.images import load_image, save_image, to_uint8
from zrealism_core.imaging.sample import sample_character

RUN_FAST = ["--size", "64", "--steps", "4", "--device", "cpu", "--dtype", "fp32", "--no-progress"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return write_tiny_models_dir(tmp_path_factory.mktemp("tiny") / "models")


def _flat_sample(path: Path, seed: int = 0) -> Path:
    img = sample_character(128, background="flat")
    if seed:  # a second, different drawing for batch tests
        img = np.ascontiguousarray(img[:, ::-1])
    return save_image(img, path)


def test_run_still_and_video_writes_every_output(models_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["run", "--sample", "--models", str(models_dir), "--out", str(out), "--video", "--frames", "4",
               "--fps", "6", "--json"] + RUN_FAST)
    assert rc == 0
    for name in ("prepped.png", "mask.png", "depth.png", "pose.png", "result.png", "result.mp4",
                 "report.json", "report.png"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "report.json").read_text())
    assert doc["settings"]["steps"] == 4
    for key, value in doc["still"]["scores"].items():
        assert 0.0 <= value <= 1.0, key
    assert 0.0 <= doc["video"]["scores"]["temporal"] <= 1.0
    # the tiny OpenPose finds nobody on the sample: the pose net was switched off, and report.json says so
    assert any(n.startswith("pose ControlNet off") for n in doc["notes"]["still"]), doc["notes"]
    assert isinstance(doc["notes"]["video"], list)
    result = load_image(out / "result.png")
    assert result.shape[:2] == (64, 64)
    from zrealism_core.imaging.video import read_video

    frames, fps = read_video(out / "result.mp4")
    assert len(frames) == 4 and fps == pytest.approx(6.0)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(printed["scores"]) >= {"overall", "silhouette", "edge", "color", "texture_realism", "temporal"}


def test_run_report_json_says_a_net_switched_off_by_its_window(models_dir, tmp_path, caplog):
    """Issue 22.3: `zrealism run` with an empty depth window lists the off line in report.json's notes (and logs it)."""
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="zrealism"):
        rc = main(["run", "--sample", "--models", str(models_dir), "--out", str(out), "--depth-scale", "0.8",
                   "--depth-start", "0.9", "--depth-end", "0.2"] + RUN_FAST)
    assert rc == 0
    doc = json.loads((out / "report.json").read_text())
    line = "depth ControlNet off: start >= end, an empty window (depth_start 0.9, depth_end 0.2)"
    assert any(n.startswith(line) for n in doc["notes"]["still"]), doc["notes"]
    assert not any("connected params" in n for n in doc["notes"]["still"])  # the end was the user's own flag
    assert doc["settings"]["depth_start"] == 0.9 and doc["settings"]["depth_end"] == 0.2
    assert line in caplog.text


def test_run_folder_is_batch_and_resumable(models_dir, tmp_path, capsys):
    src = tmp_path / "in"
    _flat_sample(src / "a.png")
    _flat_sample(src / "b.png", seed=1)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["run", str(src), "--models", str(models_dir), "--out", str(out)] + RUN_FAST) == 0
    assert (out / "a" / "report.json").is_file() and (out / "b" / "result.png").is_file()
    stamp = (out / "a" / "report.json").stat().st_mtime_ns
    (out / "b" / "report.json").unlink()  # as if the batch had stopped while on b
    capsys.readouterr()
    assert main(["run", str(src), "--models", str(models_dir), "--out", str(out)] + RUN_FAST) == 0
    text = capsys.readouterr().out
    assert "a.png: done already" in text and "b.png: wrote" in text
    assert (out / "a" / "report.json").stat().st_mtime_ns == stamp
    assert (out / "b" / "report.json").is_file()


def test_missing_models_exit_2_with_one_message(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["run", "--sample", "--models", str(empty), "--out", str(tmp_path / "o"), "--video"]) == 2
    err = capsys.readouterr().err
    for part in ("checkpoints", "controlnet", "animatediff_models", "v1-5-pruned-emaonly.safetensors",
                 "control_v11f1p_sd15_depth", "control_v11p_sd15_openpose", "mm_sd_v15_v2"):
        assert part in err, part
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_missing_explicit_file_exit_2(models_dir, tmp_path, capsys):
    rc = main(["run", "--sample", "--models", str(models_dir), "--checkpoint", str(tmp_path / "nope.safetensors"),
               "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "nope.safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["run", "--models", "."],  # no input
    ["run", "x.png", "--sample"],  # two inputs
    ["run", "--sample", "--size", "30"],
    ["run", "--sample", "--frames", "0"],
    ["run", "--sample", "--dtype", "fp64"],
    ["run", "--sample", "--no-such-flag"],
    ["run", "missing.png"],
])
def test_bad_arguments_exit_2(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    assert rc == 2
    assert capsys.readouterr().err.strip()


def test_node_graph_and_cli_give_the_same_result(models_dir, tmp_path, pack):
    """Prep -> Analyzer -> Sampler (params wired) in nodes == `zrealism run` with the same seed."""
    import torch

    png = _flat_sample(tmp_path / "drawing.png")
    out = tmp_path / "cli"
    assert main(["run", str(png), "--models", str(models_dir), "--out", str(out), "--size", "64", "--seed", "7",
                 "--device", "cpu", "--dtype", "fp32", "--no-progress"]) == 0
    cli_result = (load_image(out / "result.png") * 255 + 0.5).astype(np.uint8)

    from zrealism_core.models.catalog import discover

    paths = discover(models_dir)
    nodes = pack.nodes.NODE_CLASS_MAPPINGS
    image = torch.from_numpy(load_image(png)[None])
    prepped, mask = nodes["ZRealism_WhiteBackgroundPrep"]().prepare(image, long_side=64)
    analysis = nodes["ZRealism_HeuristicAnalyzer"]().run(prepped, "", mask)
    positive, negative, params = analysis[6], analysis[7], analysis[9]
    engine = importlib.import_module(f"{pack.__name__}.zrealism_core.engine")
    pipe = engine.load_pipeline(
        paths.checkpoint, paths.depth_controlnet, paths.pose_controlnet, device="cpu", dtype="fp32",
        annotator_dirs=[str(d) for d in paths.annotator_dirs])
    sampler = nodes["ZRealism_DualControlNetSampler"]()
    defaults = {k: v[1].get("default") for k, v in sampler.INPUT_TYPES()["required"].items() if len(v) > 1}
    kwargs = {k: v for k, v in defaults.items() if k not in ("pipe", "image", "prompt", "negative", "seed")}
    result = getattr(sampler, sampler.FUNCTION)(pipe, prepped, positive, negative, 7, mask=mask, params=params, **kwargs)
    node_result = to_uint8(result[0][0].numpy())
    assert node_result.shape == cli_result.shape
    assert np.array_equal(node_result, cli_result)


def test_selftest_passes_offline(capsys):
    assert main(["selftest", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "passed" in out
    for stage in ("prep", "analyze", "still", "video", "evaluate"):
        assert stage in out
