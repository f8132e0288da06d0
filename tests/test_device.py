"""Device/precision policy and the runtime plumbing (fallback chain, step callback, telemetry)."""
from __future__ import annotations

import logging
import os
import threading
import types

import pytest
import torch

from zrealism_core import CancelledError, InputError, ZRealismError
from zrealism_core.runtime import device as dv
from zrealism_core.runtime import fallback as rt
@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(dv, "cuda_usable", lambda: False)
    monkeypatch.setattr(dv, "mps_usable", lambda: False)


def test_cpu_policy(no_gpu):
    p = dv.plan("auto", "auto")
    assert p.device.type == "cpu" and p.dtype == torch.float32 and "no usable GPU" in p.reason
    assert dv.plan("cpu", "bf16").dtype == torch.bfloat16
    assert dv.plan("cpu", "bfloat16").dtype == torch.bfloat16


def test_fp16_on_cpu_runs_fp32_with_a_reason(no_gpu, caplog):
    with caplog.at_level(logging.WARNING, logger="zrealism"):
        p = dv.plan("cpu", "fp16")
    assert p.dtype == torch.float32 and "fp16" in caplog.text


def test_unusable_gpu_falls_back_or_errors(no_gpu, caplog):
    with caplog.at_level(logging.WARNING, logger="zrealism"):
        p = dv.plan("cuda", "auto")
    assert p.device.type == "cpu" and p.dtype == torch.float32 and "CUDA is not available" in p.reason
    assert "falling back to the CPU" in caplog.text
    with pytest.raises(ZRealismError, match="cuda.*not available"):
        dv.plan("cuda", "auto", fallback=False)
    with pytest.raises(ZRealismError):
        dv.plan("mps", "auto", fallback=False)


def test_gpu_policies(monkeypatch):
    monkeypatch.setattr(dv, "cuda_usable", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    p = dv.plan("auto", "auto")
    assert p.device.type == "cuda" and p.dtype == torch.float16
    assert dv.plan("cuda", "fp32").dtype == torch.float32
    assert dv.plan("cuda:0", "bf16").dtype == torch.bfloat16
    monkeypatch.setattr(dv, "cuda_usable", lambda: False)
    monkeypatch.setattr(dv, "mps_usable", lambda: True)
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    p = dv.plan("auto", "auto")
    assert p.device.type == "mps" and p.dtype == torch.float16
    assert os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"


def test_bad_names():
    with pytest.raises(InputError, match="precision"):
        dv.parse_dtype("fp8")
    with pytest.raises(InputError, match="device"):
        dv.resolve_device("gpu please")


def test_is_oom():
    assert dv.is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 MiB"))
    assert dv.is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not dv.is_oom(RuntimeError("shape mismatch"))
    assert not dv.is_oom(ValueError("out of memory"))


def test_attempt_chain():
    chain = rt.attempt_chain(torch.device("cuda"), torch.float16)
    assert [(a.device.type, a.dtype, a.offload, a.free_others) for a in chain] == [
        ("cuda", torch.float16, False, False), ("cuda", torch.float16, False, True),
        ("cuda", torch.float16, True, True), ("cpu", torch.float32, False, True)]
    assert len(rt.attempt_chain("cuda", torch.float16, fallback=False)) == 1
    assert [a.device.type for a in rt.attempt_chain("mps", torch.float16)] == ["mps", "mps", "cpu"]
    assert len(rt.attempt_chain("cpu", torch.float32)) == 1


def test_run_with_fallback_order_logs_and_restore(caplog):
    chain = rt.attempt_chain(torch.device("cuda"), torch.float16)
    prepared, restored = [], []

    def job(a):
        if a.device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return "done on " + a.device.type

    timings = {}
    with caplog.at_level(logging.INFO, logger="zrealism"):
        out = rt.run_with_fallback(job, chain, prepare=prepared.append, restore=restored.append, timings=timings)
    assert out == "done on cpu"
    assert prepared == chain and restored == chain[1:]
    for reason in ("freeing the other models and retrying on the GPU", "retrying with model offload", "running on the CPU in fp32"):
        assert reason in caplog.text
    assert "allocating" in timings


class _Recorder:
    """A placement that records what the chain asks of it."""

    def __init__(self):
        self.events = []

    def place(self, attempt, memory_required, skip=()):
        self.events.append(("place", attempt, memory_required))

    def restore(self, attempt):
        self.events.append(("restore", attempt))


def test_chain_falls_back_once_per_batch_and_restores_at_the_end():
    attempts = rt.attempt_chain(torch.device("cuda"), torch.float16)
    placement = _Recorder()
    ran = []

    def job(a):
        ran.append(a)
        if a.device.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return a.device.type

    with rt.FallbackChain(attempts, placement) as chain:
        out = [chain.run(job, memory_required=123) for _ in range(4)]
        assert chain.fell_back == attempts[-1].reason
    assert out == ["cpu"] * 4
    # the first image walks the chain once; images 2-4 start on the CPU at once
    assert ran == attempts + [attempts[-1]] * 3
    assert chain.steps == [a.reason for a in attempts[1:]]
    places = [e[1] for e in placement.events if e[0] == "place"]
    assert places == attempts + [attempts[-1]] * 3
    assert all(e[2] == 123 for e in placement.events if e[0] == "place")
    restores = [e[1] for e in placement.events if e[0] == "restore"]
    assert restores == attempts[1:]  # each fallback undone when left, the last one at the batch's end
    assert placement.events[-1] == ("restore", attempts[-1]) and chain.index == 0  # the next batch starts from the top


def test_run_with_fallback_other_errors_propagate_at_once():
    chain = rt.attempt_chain(torch.device("cuda"), torch.float16)
    seen = []

    def job(a):
        seen.append(a)
        raise CancelledError("stop")

    with pytest.raises(CancelledError):
        rt.run_with_fallback(job, chain, prepare=lambda a: None)
    assert len(seen) == 1


def test_run_with_fallback_exhausted_is_clear():
    def job(a):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ZRealismError, match="out of GPU memory.*enable the CPU fallback"):
        rt.run_with_fallback(job, rt.attempt_chain("cuda", torch.float16, fallback=False), prepare=lambda a: None)
    with pytest.raises(ZRealismError, match="even on the CPU"):
        rt.run_with_fallback(job, rt.attempt_chain("cuda", torch.float16), prepare=lambda a: None)


def test_step_callback_total_from_pipeline_and_cancel():
    seen = []
    fn = rt.make_step_callback(lambda s, t: seen.append((s, t)))
    pipe = types.SimpleNamespace(_num_timesteps=3)
    for i in range(3):
        assert fn(pipe, i, 999, {"latents": 1}) == {"latents": 1}
    assert seen == [(1, 3), (2, 3), (3, 3)] and fn.steps_done == 3
    ev = threading.Event()
    fn = rt.make_step_callback(None, cancel=ev)
    fn(pipe, 0, 1, {})
    ev.set()
    with pytest.raises(CancelledError, match="after step 2 of 3"):
        fn(pipe, 1, 1, {})
    fn = rt.make_step_callback(None, cancel=lambda: True)
    with pytest.raises(CancelledError):
        fn(pipe, 0, 1, {})
    assert rt.expected_steps(20, 0.6) == 12 and rt.expected_steps(2, 0.75) == 1 and rt.expected_steps(5, 1.0) == 5


def test_stage_logs_time(caplog):
    timings = {}
    with caplog.at_level(logging.INFO, logger="zrealism"):
        with rt.stage("loading models", timings, "x.safetensors"):
            pass
    assert "loading models (x.safetensors)" in caplog.text and "done in" in caplog.text
    assert timings["loading models"] >= 0


def test_schedulers():
    from zrealism_core.models.schedulers import SCHEDULER_NAMES, make_scheduler
    from zrealism_core.testing.tiny_models import SD15_SCHEDULER_CONFIG

    s = make_scheduler("dpmpp_2m_karras", SD15_SCHEDULER_CONFIG)
    assert type(s).__name__ == "DPMSolverMultistepScheduler" and s.config.use_karras_sigmas
    assert s.config.beta_schedule == "scaled_linear"
    assert type(make_scheduler("euler", SD15_SCHEDULER_CONFIG)).__name__ == "EulerDiscreteScheduler"
    assert {"dpmpp_2m_karras", "euler"} <= set(SCHEDULER_NAMES)
    with pytest.raises(InputError, match="dpmpp_2m_karras"):
        make_scheduler("k_lms_fancy", SD15_SCHEDULER_CONFIG)


def test_note_logs_once_and_job_report_lists_notes(caplog):
    notes = []
    with caplog.at_level("WARNING", logger="zrealism"):
        rt.note(notes, "pose ControlNet off: no person found")
        rt.note(notes, "pose ControlNet off: no person found")
    assert notes == ["pose ControlNet off: no person found"]
    assert "pose ControlNet off: no person found" in caplog.text
    assert rt.job_report([("image 1", []), ("image 2", notes)]) == "image 2: pose ControlNet off: no person found"
    assert rt.job_report([("image 1", [])]) == "Nothing was switched off or changed."
