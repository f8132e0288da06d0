"""Contract of every node class in the pack (ComfyUI classic API), and the prep/analyzer nodes run
on ComfyUI-style tensors."""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch

from zrealism_core.imaging.sample import sample_character

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
KNOWN_KEYS = {"required", "optional", "hidden"}


def node_items(pack):
    return sorted(pack.nodes.NODE_CLASS_MAPPINGS.items())


def test_all_node_modules_load(pack):
    assert pack.nodes.LOAD_ERRORS == {}, {k: repr(v) for k, v in pack.nodes.LOAD_ERRORS.items()}
    ids = set(pack.nodes.NODE_CLASS_MAPPINGS)
    assert {"ZRealism_WhiteBackgroundPrep", "ZRealism_HeuristicAnalyzer", "ZRealism_LoadImageFolder"} <= ids
    assert pack.NODE_CLASS_MAPPINGS is pack.nodes.NODE_CLASS_MAPPINGS


def _check_input(node_id, section, name, spec):
    where = f"{node_id}.{section}.{name}"
    assert SNAKE.match(name), f"{where}: input names are snake_case"
    assert isinstance(spec, (tuple, list)) and 1 <= len(spec) <= 2, f"{where}: spec must be (TYPE,) or (TYPE, options)"
    kind = spec[0]
    options = spec[1] if len(spec) == 2 else {}
    assert isinstance(options, dict), f"{where}: options must be a dict"
    if section == "hidden":
        return
    tip = options.get("tooltip")
    assert isinstance(tip, str) and len(tip.strip()) >= 10, f"{where}: every input needs a tooltip"
    if isinstance(kind, (list, tuple)):  # combo
        assert len(kind) > 0 or "default" not in options, f"{where}: empty combo"
        if "default" in options and len(kind):
            assert options["default"] in kind, f"{where}: default not among the choices"
        return
    assert isinstance(kind, str) and kind, f"{where}: type must be a string or a list of choices"
    if kind == "COMBO":
        choices = options.get("options", [])
        if "default" in options and choices:
            assert options["default"] in choices, f"{where}: default not among the options"
    if kind in ("INT", "FLOAT") and "default" in options:
        d = options["default"]
        assert isinstance(d, (int, float)) and not isinstance(d, bool), f"{where}: numeric default"
        assert options.get("min", d) <= d <= options.get("max", d), f"{where}: default outside min..max"
        if kind == "INT":
            assert isinstance(d, int), f"{where}: INT default must be int"
    if kind == "BOOLEAN" and "default" in options:
        assert isinstance(options["default"], bool), f"{where}: BOOLEAN default must be bool"
    if kind == "STRING" and "default" in options:
        assert isinstance(options["default"], str), f"{where}: STRING default must be str"


def test_every_node_follows_the_contract(pack):
    items = node_items(pack)
    assert items
    displays = pack.nodes.NODE_DISPLAY_NAME_MAPPINGS
    for node_id, cls in items:
        assert node_id.startswith("ZRealism_"), node_id
        assert isinstance(displays.get(node_id), str) and displays[node_id].strip(), f"{node_id}: display name"
        assert isinstance(getattr(cls, "DESCRIPTION", None), str) and len(cls.DESCRIPTION) > 20, f"{node_id}: DESCRIPTION"
        assert isinstance(cls.CATEGORY, str) and cls.CATEGORY.startswith("Z-Realism"), f"{node_id}: CATEGORY"
        types = cls.RETURN_TYPES
        assert isinstance(types, tuple), f"{node_id}: RETURN_TYPES must be a tuple"
        names = getattr(cls, "RETURN_NAMES", None)
        tips = getattr(cls, "OUTPUT_TOOLTIPS", None)
        assert isinstance(names, tuple) and len(names) == len(types), f"{node_id}: RETURN_NAMES length"
        assert isinstance(tips, tuple) and len(tips) == len(types), f"{node_id}: OUTPUT_TOOLTIPS length"
        assert all(isinstance(t, str) and t.strip() for t in tips), f"{node_id}: empty output tooltip"
        assert len(set(names)) == len(names), f"{node_id}: duplicate output names"
        assert isinstance(cls.FUNCTION, str) and callable(getattr(cls, cls.FUNCTION, None)), f"{node_id}: FUNCTION"
        if hasattr(cls, "OUTPUT_IS_LIST"):  # ComfyUI zips it with the outputs: one bool per output
            flags = cls.OUTPUT_IS_LIST
            assert isinstance(flags, tuple) and len(flags) == len(types), f"{node_id}: OUTPUT_IS_LIST length"
            assert all(isinstance(f, bool) for f in flags), f"{node_id}: OUTPUT_IS_LIST holds bools"
        assert isinstance(getattr(cls, "INPUT_IS_LIST", False), bool), f"{node_id}: INPUT_IS_LIST"
        if hasattr(cls, "OUTPUT_NODE"):
            assert isinstance(cls.OUTPUT_NODE, bool)
        spec = cls.INPUT_TYPES()
        assert isinstance(spec, dict) and "required" in spec and set(spec) <= KNOWN_KEYS, f"{node_id}: INPUT_TYPES keys"
        all_names = []
        for section in ("required", "optional", "hidden"):
            for name, item in spec.get(section, {}).items():
                _check_input(node_id, section, name, item)
                all_names.append(name)
        assert len(all_names) == len(set(all_names)), f"{node_id}: an input name appears twice"
        # the function accepts every input by name, and needs nothing that is not required
        sig = inspect.signature(getattr(cls, cls.FUNCTION))
        params = {k: p for k, p in sig.parameters.items() if k != "self"}
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for name in all_names:
            assert name in params or var_kw, f"{node_id}.{cls.FUNCTION} does not accept input {name!r}"
        for k, p in params.items():
            if p.default is p.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                assert k in spec["required"] or k in spec.get("hidden", {}), f"{node_id}: {k} is not a required input"


# ---------------------------------------------------------------- running the two nodes

def comfy_image(batch: int = 2, size: int = 96, background="flat") -> torch.Tensor:
    frames = [sample_character(size, background) for _ in range(batch)]
    return torch.from_numpy(np.stack(frames)).float()


def test_prep_node_on_tensors(pack):
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_WhiteBackgroundPrep"]
    node = cls()
    image = comfy_image(2, 96)
    out_image, out_mask = getattr(node, cls.FUNCTION)(image=image, tolerance=12.0, grabcut=False, feather=0.0,
                                                      grow=0, long_side=0, mask_is_background=True)
    assert isinstance(out_image, torch.Tensor) and out_image.shape == (2, 96, 96, 3) and out_image.dtype == torch.float32
    assert out_mask.shape == (2, 96, 96) and 0 <= float(out_mask.min()) and float(out_mask.max()) <= 1
    truth = sample_character(96)[..., 3]
    m = out_mask[0].numpy()
    assert np.minimum(m, truth).sum() / np.maximum(m, truth).sum() > 0.95
    # LoadImage-style mask (1 where the PNG was transparent = background), one for the whole batch
    bg_mask = torch.from_numpy(1.0 - truth)[None]
    _, m2 = node.prepare(image=image, mask=bg_mask, mask_is_background=True, long_side=64)
    assert m2.shape == (2, 64, 64)
    # the same mask read as "1 = character" would select the background instead
    _, m3 = node.prepare(image=image, mask=bg_mask, mask_is_background=False)
    assert float(m3[0].mean()) > 0.5 > float(out_mask[0].mean())
    # LoadImage on a picture without transparency gives a 64x64 all-zero mask: ignored -> detection
    _, m4 = node.prepare(image=image, mask=torch.zeros(1, 64, 64), mask_is_background=True)
    assert torch.equal(m4, out_mask)
    # RGBA IMAGE tensors use their alpha
    rgba = torch.from_numpy(np.stack([sample_character(96)])).float()
    _, m5 = node.prepare(image=rgba)
    np.testing.assert_allclose(m5[0].numpy(), truth, atol=1e-6)


def test_prep_node_bad_batches_raise_clear_errors(pack):
    node = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_WhiteBackgroundPrep"]()
    error = pack.zrealism_core.errors.InputError
    with pytest.raises(error, match="batch"):
        node.prepare(image=comfy_image(2, 64), mask=torch.rand(3, 64, 64))
    with pytest.raises(error, match="resize the mask"):
        node.prepare(image=comfy_image(1, 64), mask=torch.rand(1, 32, 32), mask_is_background=False)
    with pytest.raises(error, match="NaN"):
        node.prepare(image=torch.full((1, 32, 32, 3), float("nan")))


def test_analyzer_node_on_tensors(pack):
    cls = pack.nodes.NODE_CLASS_MAPPINGS["ZRealism_HeuristicAnalyzer"]
    node = cls()
    image = comfy_image(2, 128, (1.0, 1.0, 1.0))
    out = getattr(node, cls.FUNCTION)(image=image, subject="a girl with orange hair")
    assert len(out) == len(cls.RETURN_TYPES)
    py_types = {"FLOAT": float, "INT": int, "STRING": str}
    for value, kind in zip(out, cls.RETURN_TYPES):
        if kind in py_types:
            assert type(value) is py_types[kind], (kind, value)
    params = out[-1]
    assert type(params).__name__ == "RecommendedParams"
    assert (params.depth_scale, params.pose_scale, params.denoise, params.steps, params.cfg, params.control_end) == out[:6]
    assert out[6].startswith("a girl with orange hair") and "cartoon" in out[7] and "Recommended" in out[8]
    # a prep mask (1 = character) for the batch; the first image is analysed
    mask = torch.from_numpy(sample_character(128)[..., 3])[None].repeat(2, 1, 1)
    with_mask = node.run(image=image, subject="", mask=mask)
    assert 0.3 <= with_mask[0] <= 1.0
    first_only = node.run(image=image[:1], subject="")
    assert first_only[:6] == node.run(image=image, subject="")[:6]
