"""Running a diffusion job: step callbacks and Cancel, the OOM -> offload -> CPU fallback, telemetry.

This module is shared by the still engine (engine/) and the video stage (animation.py). Reusable API:

    make_step_callback(callback, *, cancel=None, on_step=None, preview=None) -> fn
        Returns a diffusers `callback_on_step_end(pipe, step, timestep, kwargs) -> kwargs`.
        It calls `callback(done, total)` after every executed denoising step, with `total` =
        the steps this run really executes (img2img runs int(steps * strength); read from the
        pipeline's `_num_timesteps`, so it is right for any scheduler). Pass it as
        `pipe(..., callback_on_step_end=fn, callback_on_step_end_tensor_inputs=["latents"])`.
        Cancel: if `callback` raises (ComfyUI's ProgressBar raises InterruptProcessingException
        when the user presses Cancel) or `cancel()` returns True / `cancel.is_set()` (a
        threading.Event), the exception leaves the pipeline right after the current step, so no
        further UNet evaluation runs. `cancel` raises our CancelledError; a callback's own
        exception propagates unchanged (ComfyUI shows "interrupted" for its own exception).
        `fn.steps_done` counts executed steps (telemetry/tests).
        `preview(done, total, latents)`: also called each step with the current latents tensor
        ([B, 4, h, w]; a clip's are [B, 4, F, h, w]); inside ComfyUI the node turns them into a
        picture with ComfyUI's own previewer (nodes/bridge.preview_progress).

    expected_steps(steps, strength) -> int
        What img2img will execute: int(steps * strength) capped to steps (create progress bars with it).

    Attempt(device, dtype, offload, reason, free_others)  one way of running a job
    attempt_chain(device, dtype, *, fallback=True)       [as planned, free the other models + retry on the
                                                          GPU, model offload (CUDA), CPU fp32]; a CPU plan
                                                          has only itself
    FallbackChain(attempts, placement)                   the one OOM chain of a batch: `chain.run(job,
        memory_required=...)` per job; once a job fell back the rest of the batch stays there, and
        `close()` restores the plan for the next batch. Every step is logged with its reason. Any
        other exception (including cancel) propagates at once. With fallback off the chain has one
        attempt and an OOM becomes a ZRealismError that says what to change.
    run_with_fallback(job, attempts, *, prepare, restore=None) -> result   a one-job FallbackChain

    note(notes, message)
        Say what was switched off or changed on the user's behalf (an empty map, an unknown embedding, a
        resized map...): a warning in the log and a line in `notes` (TransformResult.notes / Clip.notes,
        which the nodes show in their `report` output). Nothing is switched off silently.

    Telemetry: `stage(name, timings)` context manager logs "zrealism: <name> ..." and the time it took,
    and stores the seconds in the `timings` dict under `name`.

Nothing here imports ComfyUI; the ComfyUI node passes a ProgressBar-driven `callback` and a
placement that uses comfy.model_management (nodes/bridge/memory.py).
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

from .device import dtype_name, free_memory, is_oom
from .instance_patch import method_replaced
from ..errors import CancelledError, ZRealismError

log = logging.getLogger("zrealism")

T = TypeVar("T")
ProgressCallback = Callable[[int, int], None]


# ------------------------------------------------------------------ telemetry

def job_report(items: Sequence[Any]) -> str:
    """A node's `report` text from (label, notes) pairs: one line per note, or a line saying there were none."""
    lines = [f"{label}: {msg}" for label, notes in items for msg in notes]
    return "\n".join(lines) if lines else "Nothing was switched off or changed."


def note(notes: Optional[List[str]], message: str) -> None:
    """Log `message` as a warning and add it (once) to `notes`, the result's list shown in the node's report."""
    log.warning("zrealism: %s", message)
    if notes is not None and message not in notes:
        notes.append(message)


@contextlib.contextmanager
def stage(name: str, timings: Optional[Dict[str, float]] = None, detail: str = "") -> Iterator[None]:
    """Log the start and duration of one stage ('loading models', 'allocating', 'synthesizing', ...)."""
    log.info("zrealism: %s%s ...", name, f" ({detail})" if detail else "")
    t0 = time.perf_counter()
    try:
        yield
    finally:
        dt = time.perf_counter() - t0
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + dt
        log.info("zrealism: %s done in %.2f s", name, dt)


@contextlib.contextmanager
def timed_method(obj: Any, method: str, name: str, timings: Optional[Dict[str, float]] = None) -> Iterator[None]:
    """While active, each call of obj.<method> is a stage of its own (e.g. the VAE decode inside 'synthesizing')."""
    inner = getattr(obj, method)  # taken on entry: the wrappers already in place are part of the timed call

    def timed(*args: Any, **kwargs: Any) -> Any:
        with stage(name, timings):
            return inner(*args, **kwargs)

    with method_replaced(obj, method, timed):
        yield


# ------------------------------------------------------------------ progress and cancel

def expected_steps(steps: int, strength: float) -> int:
    """Denoising steps img2img executes for `steps` and `strength` (diffusers' get_timesteps)."""
    return min(int(int(steps) * float(strength)), int(steps))


def _cancel_requested(cancel: Any) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def make_step_callback(
    callback: Optional[ProgressCallback] = None,
    *,
    cancel: Any = None,
    on_step: Optional[Callable[[Any, int, Any, Dict[str, Any]], None]] = None,
    preview: Optional[Callable[[int, int, Any], None]] = None,
) -> Callable[..., Dict[str, Any]]:
    """A diffusers `callback_on_step_end` that reports progress and stops on Cancel (see module doc)."""

    def step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: Dict[str, Any]) -> Dict[str, Any]:
        step_end.steps_done += 1
        total = int(getattr(pipe, "_num_timesteps", 0) or 0) or step_end.steps_done
        if on_step is not None:
            on_step(pipe, step, timestep, callback_kwargs)
        if preview is not None and callback_kwargs.get("latents") is not None:
            preview(step_end.steps_done, total, callback_kwargs["latents"])  # may raise, like callback
        if callback is not None:
            callback(step_end.steps_done, total)  # may raise (ComfyUI Cancel): propagates as is
        if _cancel_requested(cancel):
            raise CancelledError(f"cancelled after step {step_end.steps_done} of {total}")
        return callback_kwargs

    step_end.steps_done = 0
    return step_end


def check_cancel(cancel: Any, where: str = "before sampling") -> None:
    """Raise CancelledError if cancellation was requested (for checks between stages). A `cancel`
    callable may also raise its own exception (ComfyUI's interrupt), which propagates as is."""
    if _cancel_requested(cancel):
        raise CancelledError(f"cancelled {where}")


@contextlib.contextmanager
def cancel_between_calls(module: Any, cancel: Any, where: str) -> Iterator[None]:
    """Check `cancel` before every call of `module` inside the block (e.g. the VAE decoder, called once
    per decode chunk), so Cancel stops between chunks."""
    if cancel is None:
        yield
        return
    handle = module.register_forward_pre_hook(lambda m, args: check_cancel(cancel, where))
    try:
        yield
    finally:
        handle.remove()


# ------------------------------------------------------------------ fallback

@dataclass(frozen=True)
class Attempt:
    """One way to run a job: where, in which dtype, with offloading (diffusers' model CPU offload, or
    ComfyUI's lowvram partial load inside ComfyUI) or not, and whether the other models on the
    device are freed first."""

    device: Any
    dtype: Any
    offload: bool = False
    reason: str = "as planned"
    free_others: bool = False

    def __str__(self) -> str:
        return f"{self.device} {dtype_name(self.dtype)}{' + model offload' if self.offload else ''}"


def attempt_chain(device: Any, dtype: Any, *, fallback: bool = True) -> List[Attempt]:
    """The attempts for a job planned on `device`/`dtype`, in order: as planned; the same after freeing
    the other models on the GPU; with model offload (CUDA only); the CPU in fp32. A CPU plan has only itself."""
    import torch

    device = torch.device(device)
    first = Attempt(device, dtype)
    if not fallback or device.type == "cpu":
        return [first]
    chain = [first, Attempt(device, dtype, False, "GPU out of memory: freeing the other models and retrying on the GPU", True)]
    if device.type == "cuda":  # accelerate's model offload needs CUDA (and is pointless on MPS's shared memory)
        chain.append(Attempt(device, dtype, True, "GPU out of memory again: retrying with model offload", True))
    chain.append(Attempt(torch.device("cpu"), torch.float32, False, "GPU out of memory: running on the CPU in fp32", True))
    return chain


class FallbackChain:
    """The one out-of-memory chain of a batch (see attempt_chain for the order).

        with FallbackChain(attempts, placement) as chain:
            for image in batch:
                result = chain.run(job, memory_required=estimate)

    `run` calls `placement.place(attempt, memory_required, skip)` (runtime.placement.Placement, ComfyUI's
    inside ComfyUI, or CallbackPlacement around two plain callables) then `job(attempt)`; on a GPU out-of-memory error it frees memory, logs the step and its reason,
    and moves on to the next attempt. Once the batch has fallen back, later jobs of the batch start
    where the last one succeeded (a batch of 8 falls back once, not 8 times). Any other exception
    (including Cancel) propagates at once and ends the batch (close()). `close()` (the end of the `with`) runs `restore(attempt)`
    (placement.restore) for a fallback attempt, so the next batch starts from the top again.
    """

    def __init__(self, attempts: Sequence[Attempt], placement: Any, *, timings: Optional[Dict[str, float]] = None) -> None:
        if not attempts:
            raise ValueError("attempts must not be empty")
        if placement is None or not hasattr(placement, "place"):
            raise ValueError("placement must have place(attempt, memory_required, skip) and restore(attempt) "
                             "(runtime.placement.Placement; plain callables: CallbackPlacement(prepare, restore))")
        self.attempts = list(attempts)
        self.placement = placement
        self.timings = timings
        self.index = 0
        self.steps: List[str] = []  # every fallback step with its reason (tests, reports)

    @property
    def attempt(self) -> Attempt:
        return self.attempts[self.index]

    @property
    def fell_back(self) -> Optional[str]:
        return self.attempt.reason if self.index > 0 else None

    def run(
        self,
        job: Callable[[Attempt], T],
        *,
        memory_required: int = 0,
        timings: Optional[Dict[str, float]] = None,
        skip: Sequence[str] = (),
    ) -> T:
        """Run one job (see the class doc); `skip`: module names the job does not use (nets that are off)."""
        timings = self.timings if timings is None else timings
        last_msg = ""
        while True:
            attempt = self.attempts[self.index]
            try:
                with stage("allocating", timings, f"{attempt}, {memory_required / 2**20:.0f} MiB for activations"):
                    self.placement.place(attempt, memory_required, skip)
                return job(attempt)
            except BaseException as exc:
                if not is_oom(exc):
                    self.close()  # an error (or Cancel) ends the batch: the plan is restored for the next one
                    raise
                # keep only the text: the exception's traceback pins the step's tensors in memory
                last_msg = (str(exc).splitlines() or [""])[0][:300]
                log.warning("zrealism: out of memory on %s: %s", attempt, last_msg)
            free_memory(attempt.device)
            if self.index + 1 >= len(self.attempts):
                self.close()
                break
            if self.index > 0:
                self.placement.restore(attempt)  # undo this fallback's placement before the next one
            self.index += 1
            nxt = self.attempts[self.index]
            self.steps.append(nxt.reason)
            log.warning("zrealism: %s -> %s", nxt.reason, nxt)
        if len(self.attempts) == 1:
            raise ZRealismError(
                f"out of GPU memory on {self.attempts[0]}; lower the image size, close other GPU programs, "
                f"or enable the CPU fallback. ({last_msg})"
            )
        raise ZRealismError(f"out of memory even on the CPU fallback; lower the image size or free RAM. ({last_msg})")

    def close(self) -> None:
        """End of the batch: undo a fallback placement; the next batch starts from the top."""
        if self.index > 0:
            self.placement.restore(self.attempts[self.index])
        self.index = 0

    def __enter__(self) -> "FallbackChain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class CallbackPlacement:
    """The placement API over two plain callables, `prepare(attempt)` and `restore(attempt)`: the older
    form transform() / animate() still accept as `prepare=` / `restore=` (tests, benchmarks)."""

    def __init__(self, prepare: Callable[[Attempt], None], restore: Optional[Callable[[Attempt], None]] = None) -> None:
        self.prepare, self._restore = prepare, restore

    def place(self, attempt: Attempt, memory_required: int = 0, skip: Sequence[str] = ()) -> None:
        self.prepare(attempt)

    def restore(self, attempt: Attempt) -> None:
        if self._restore is not None:
            self._restore(attempt)


def run_with_fallback(
    job: Callable[[Attempt], T],
    attempts: Sequence[Attempt],
    *,
    prepare: Callable[[Attempt], None],
    restore: Optional[Callable[[Attempt], None]] = None,
    timings: Optional[Dict[str, float]] = None,
) -> T:
    """Run `job` once on the first attempt that does not run out of GPU memory: a one-job FallbackChain."""
    with FallbackChain(attempts, CallbackPlacement(prepare, restore), timings=timings) as chain:
        return chain.run(job)
