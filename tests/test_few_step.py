"""Few-step samplers (lcm, tcd) for LCM / TCD / Hyper-SD LoRAs, and cfg <= 1 switching CFG off."""
from __future__ import annotations

import numpy as np
import pytest

from fakes.engine_fixtures import _one_thread, rand_image, tiny_pipe  # noqa: F401 (fixtures)
from zrealism_core.engine import transform
from zrealism_core.models.schedulers import SCHEDULER_NAMES, make_scheduler
from zrealism_core.testing.tiny_models import SD15_SCHEDULER_CONFIG

IMG, DEPTH, POSE = rand_image(36, 44, 0), rand_image(36, 44, 1), rand_image(36, 44, 2)


def unet_batches(pipe):
    seen = []
    handle = pipe.sd.unet.register_forward_pre_hook(lambda m, args, kwargs: seen.append(args[0].shape[0]), with_kwargs=True)
    return seen, handle


@pytest.mark.parametrize("name,cls", [("lcm", "LCMScheduler"), ("tcd", "TCDScheduler")])
def test_few_step_schedulers_exist(name, cls):
    assert name in SCHEDULER_NAMES
    s = make_scheduler(name, SD15_SCHEDULER_CONFIG)
    assert type(s).__name__ == cls and s.config.beta_schedule == "scaled_linear"  # the model's training schedule


@pytest.mark.parametrize("name", ["lcm", "tcd"])
def test_four_step_job_with_cfg_one_runs_without_cfg(tiny_pipe, name):
    seen, handle = unet_batches(tiny_pipe)
    steps = []
    try:
        r = transform(tiny_pipe, IMG, depth_map=DEPTH, pose_map=POSE, prompt="a photo", negative="blurry",
                      steps=4, denoise=1.0, cfg=1.0, scheduler=name, callback=lambda s, t: steps.append((s, t)))
        assert seen == [1, 1, 1, 1]  # 4 UNet calls, each on the positive prompt only: CFG is off
        assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)] and r.steps == 4
        assert np.isfinite(r.image).all() and r.image.std() > 1e-3
        seen.clear()
        transform(tiny_pipe, IMG, depth_map=DEPTH, pose_map=POSE, prompt="a photo", steps=4, denoise=1.0, cfg=1.5, scheduler=name)
        assert seen == [2, 2, 2, 2]  # cfg above 1: negative + positive in one batch
    finally:
        handle.remove()


def test_cfg_one_ignores_the_negative(tiny_pipe):
    a = transform(tiny_pipe, IMG, depth_map=DEPTH, pose_map=POSE, prompt="a photo", negative="blurry",
                  steps=4, denoise=0.5, cfg=1.0, scheduler="lcm")
    b = transform(tiny_pipe, IMG, depth_map=DEPTH, pose_map=POSE, prompt="a photo", negative="something else entirely",
                  steps=4, denoise=0.5, cfg=1.0, scheduler="lcm")
    assert np.array_equal(a.image, b.image)
