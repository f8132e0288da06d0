"""Fake comfy.model_management: device choice, load/unload bookkeeping, interrupt flag."""
from __future__ import annotations

import torch

DEVICE = torch.device("cpu")
FP16 = False
BF16 = False
calls: list = []          # ("load_models_gpu", [patchers], kwargs) / ("unload_all_models",) / ...
current_loaded_models: list = []
_interrupted = False


class InterruptProcessingException(Exception):
    pass


def reset() -> None:
    global _interrupted, DEVICE, FP16, BF16
    calls.clear()
    current_loaded_models.clear()
    _interrupted = False
    DEVICE, FP16, BF16 = torch.device("cpu"), False, False


def get_torch_device():
    return DEVICE


def unet_offload_device():
    return torch.device("cpu")


def is_device_cpu(device) -> bool:
    return torch.device(device).type == "cpu"


def is_device_mps(device) -> bool:
    return torch.device(device).type == "mps"


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return FP16


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False) -> bool:
    return BF16


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None, force_full_load=False):
    calls.append(("load_models_gpu", list(models), dict(force_full_load=force_full_load)))
    for m in models:
        m.model.to(m.load_device)  # what a full load does
        m.model.device = m.load_device
        if m not in current_loaded_models:
            current_loaded_models.append(m)


def unload_all_models():
    calls.append(("unload_all_models",))
    for m in current_loaded_models:
        m.model.to(m.offload_device)
    current_loaded_models.clear()


def soft_empty_cache(force=False):
    calls.append(("soft_empty_cache",))


def processing_interrupted() -> bool:
    return _interrupted


def interrupt_current_processing(value=True):
    global _interrupted
    _interrupted = value


def throw_exception_if_processing_interrupted():
    global _interrupted
    if _interrupted:
        _interrupted = False
        raise InterruptProcessingException()
