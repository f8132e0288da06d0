"""Device and precision policy - the one place that decides where and in what dtype models run.

Rules (outside ComfyUI; inside it the node passes ComfyUI's own choice through `device=`/`dtype=`):
- device "auto": CUDA if usable, else Apple MPS, else CPU. "cuda"/"cuda:N"/"mps"/"cpu" are
  honoured; an unusable GPU falls back to the CPU with a logged reason (unless fallback is off).
- dtype "auto": fp16 on CUDA and MPS, fp32 on the CPU. "bf16" is an explicit option: on CPUs with
  avx512_bf16/AMX it is ~2.3x faster than fp32 (measured), on CPUs without them it is emulated and
  far slower (a warning says so). fp16 asked for on the CPU runs as fp32 (slow and partly
  unsupported there), with a log line saying so.
- MPS: PYTORCH_ENABLE_MPS_FALLBACK=1 is set so ops MPS lacks run on the CPU instead of failing.

torch is imported lazily: `import zrealism_core.runtime.device` stays cheap.
"""
from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Union

from ..errors import InputError, ZRealismError

log = logging.getLogger("zrealism")

DTYPE_NAMES = ("auto", "fp32", "fp16", "bf16")
_ALIASES = {
    "auto": "auto", "default": "auto",
    "fp32": "fp32", "float32": "fp32", "float": "fp32", "32": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "16": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
}


@dataclass(frozen=True)
class DevicePlan:
    """Where a job runs: `device` (torch.device), `dtype` (torch.dtype), and why (for the log)."""

    device: Any
    dtype: Any
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.device} {dtype_name(self.dtype)}" + (f" ({self.reason})" if self.reason else "")


def dtype_name(dtype: Any) -> str:
    import torch

    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))


def parse_dtype(value: Union[str, Any, None]) -> Union[str, Any]:
    """'auto' or a torch dtype from a name ('fp16', 'bfloat16', ...) or a torch dtype."""
    import torch

    if value is None:
        return "auto"
    if isinstance(value, torch.dtype):
        if value not in (torch.float32, torch.float16, torch.bfloat16):
            raise InputError(f"dtype {value} is not supported; use fp32, fp16 or bf16.")
        return value
    name = _ALIASES.get(str(value).strip().lower())
    if name is None:
        raise InputError(f"precision {value!r} is not known; use one of {', '.join(DTYPE_NAMES)}.")
    return {"auto": "auto", "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def cuda_usable() -> bool:
    import torch

    try:
        return bool(torch.cuda.is_available()) and torch.cuda.device_count() > 0
    except Exception:  # broken driver installs raise here; treat as "no GPU"
        return False


def mps_usable() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    try:
        return bool(backend is not None and backend.is_available())
    except Exception:
        return False


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 math (x86 avx512_bf16 / AMX, ARM bf16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = fh.read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", " bf16"))


def enable_mps_fallback() -> None:
    # must be set before the first MPS op; harmless elsewhere
    os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")


def resolve_device(device: Union[str, Any, None] = "auto", *, fallback: bool = True) -> tuple:
    """(torch.device, reason). Explicit GPUs that are not usable fall back to the CPU when allowed."""
    import torch

    if isinstance(device, torch.device):
        name = str(device)
    else:
        name = str(device or "auto").strip().lower()
    if name == "auto":
        if cuda_usable():
            return torch.device("cuda"), "CUDA GPU found"
        if mps_usable():
            enable_mps_fallback()
            return torch.device("mps"), "Apple GPU (MPS) found"
        return torch.device("cpu"), "no usable GPU (CUDA/MPS) found"
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"device {device!r} is not a device name; use auto, cuda, cuda:N, mps or cpu.") from exc
    if dev.type == "cuda" and not cuda_usable():
        return _unusable(dev, "CUDA is not available in this PyTorch/driver", fallback)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return _unusable(dev, f"there are only {torch.cuda.device_count()} CUDA device(s)", fallback)
    if dev.type == "mps":
        if not mps_usable():
            return _unusable(dev, "MPS is not available", fallback)
        enable_mps_fallback()
    return dev, "requested"


def _unusable(dev: Any, why: str, fallback: bool) -> tuple:
    import torch

    if not fallback:
        raise ZRealismError(f"device {dev} was requested but {why}; choose 'cpu' or 'auto', or enable the CPU fallback.")
    log.warning("zrealism: device %s requested but %s; falling back to the CPU (fp32).", dev, why)
    return torch.device("cpu"), f"{dev} unusable: {why}"


def resolve_dtype(dtype: Union[str, Any, None], device: Any) -> tuple:
    """(torch.dtype, reason) for `device` following the policy above."""
    import torch

    want = parse_dtype(dtype)
    if want == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16, f"fp16 on {device.type}"
        return torch.float32, "fp32 on the CPU"
    if device.type == "cpu" and want == torch.float16:
        log.warning("zrealism: fp16 on the CPU is slow and partly unsupported; using fp32 (choose bf16 for speed).")
        return torch.float32, "fp16 requested on the CPU"
    if device.type == "cpu" and want == torch.bfloat16 and not cpu_supports_bf16():
        # measured: on an AVX2-only EPYC a bf16 UNet step was ~12x SLOWER than fp32 (emulated bf16)
        log.warning("zrealism: this CPU has no native bf16 (no avx512_bf16/AMX): bf16 is emulated and much slower "
                    "than fp32 here; choose fp32.")
    return want, "requested"


def plan(device: Union[str, Any, None] = "auto", dtype: Union[str, Any, None] = "auto", *, fallback: bool = True) -> DevicePlan:
    """The device/dtype a pipeline is loaded for, with the reason (logged once by the loader)."""
    dev, why_dev = resolve_device(device, fallback=fallback)
    dt, why_dt = resolve_dtype(dtype, dev)
    return DevicePlan(dev, dt, f"{why_dev}; {why_dt}")


def is_oom(exc: BaseException) -> bool:
    """Out-of-memory on a GPU (CUDA, or the MPS allocator's message)."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "mps backend out of memory" in text)


def free_memory(device: Optional[Any] = None) -> None:
    """Drop Python garbage and the accelerator's cached blocks."""
    import torch

    gc.collect()
    kind = getattr(device, "type", str(device or ""))
    if kind.startswith("cuda") and cuda_usable():
        torch.cuda.empty_cache()
        try:
            torch.cuda.ipc_collect()
        except Exception:
            pass
    elif kind == "mps" and mps_usable() and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def trim_when_freed(obj: Any, delay_s: float = 2.0) -> None:
    """After `obj` is garbage-collected, hand the freed heap back to the OS (glibc's malloc_trim), a
    moment later so the objects it held are gone too. Without it glibc keeps model weights freed by
    ComfyUI's "free memory" in the process (measured: RSS stays ~0.5 GB higher for OpenPose's files)."""
    import sys
    import threading
    import weakref

    if not sys.platform.startswith("linux"):
        return

    def later() -> None:
        t = threading.Timer(delay_s, _malloc_trim)
        t.daemon = True
        t.start()

    weakref.finalize(obj, later)
