"""Fake comfy.model_management: device choice, VRAM state, the load/free/unload bookkeeping, interrupt flag.

Mirrors ComfyUI 0.3.64's signatures and the decisions our code relies on:
- load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
  force_full_load=False): full load when force_full_load or the device is the CPU; otherwise (LOW_VRAM /
  NORMAL_VRAM) a partial load whose weight budget is the free memory minus memory_required and the reserve;
  NO_VRAM loads (almost) nothing (budget 0.1 bytes) - as the real one computes `lowvram_model_memory`.
- free_memory(memory_required, device, keep_loaded=[]) unloads the other models on `device` until
  memory_required fits; unload_all_models() is free_memory(1e30, get_torch_device()).
- current_loaded_models holds LoadedModel entries (`.model` is the ModelPatcher, `model_unload()`).
GPU devices are bookkeeping only (the tests have no GPU): `FREE_VRAM` is the free memory they report.
"""
from __future__ import annotations

import weakref
from enum import Enum

import torch


class VRAMState(Enum):
    DISABLED = 0
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5


DEVICE = torch.device("cpu")
FP16 = False
BF16 = False
FREE_VRAM = 24 * 2**30
EXTRA_RESERVED_VRAM = 400 * 2**20
vram_state = VRAMState.NORMAL_VRAM
lowvram_available = True
calls: list = []          # ("load_models_gpu", [weak proxies of the patchers], kwargs) / ("free_memory", ...) / ("unload_all_models",) / ...
current_loaded_models: list = []
_interrupted = False


class InterruptProcessingException(Exception):
    pass


def reset() -> None:
    global _interrupted, DEVICE, FP16, BF16, vram_state, FREE_VRAM
    calls.clear()
    current_loaded_models.clear()
    _interrupted = False
    DEVICE, FP16, BF16 = torch.device("cpu"), False, False
    vram_state, FREE_VRAM = VRAMState.NORMAL_VRAM, 24 * 2**30


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


def extra_reserved_memory():
    return EXTRA_RESERVED_VRAM


def minimum_inference_memory():
    return (1024 * 1024 * 1024) * 0.8 + extra_reserved_memory()


def get_free_memory(dev=None, torch_free_too=False):
    dev = torch.device(dev) if dev is not None else DEVICE
    free = 64 * 2**30 if dev.type == "cpu" else FREE_VRAM
    return (free, free) if torch_free_too else free


class LoadedModel:
    """As the real one: holds its ModelPatcher weakly, and a finalizer on the patched model that cleans
    dead entries out of current_loaded_models (so code that frees a patcher during an unload shows up)."""

    def __init__(self, model):
        self._model = weakref.ref(model)
        self.device = model.load_device
        self.currently_used = True
        self.model_finalizer = None
        self.real_model = None

    @property
    def model(self):
        return self._model()

    def model_memory(self):
        return self.model.model_size()

    def model_load(self):
        self.real_model = weakref.ref(self.model.model)
        self.model_finalizer = weakref.finalize(self.model.model, cleanup_models)

    def model_unload(self, memory_to_free=None, unpatch_weights=True):
        self.model.detach(unpatch_weights)
        self.model_finalizer.detach()
        self.model_finalizer = None
        self.real_model = None
        return True

    def __eq__(self, other):
        return self.model is other.model


def cleanup_models():
    for i in range(len(current_loaded_models) - 1, -1, -1):
        rm = current_loaded_models[i].real_model
        if rm is not None and rm() is None:
            current_loaded_models.pop(i)


def free_memory(memory_required, device, keep_loaded=[]):
    calls.append(("free_memory", memory_required, torch.device(device), list(keep_loaded)))
    can_unload = [i for i in range(len(current_loaded_models) - 1, -1, -1)
                  if current_loaded_models[i].device == torch.device(device) and current_loaded_models[i] not in keep_loaded]
    unloaded = [i for i in can_unload if current_loaded_models[i].model_unload()]
    return [current_loaded_models.pop(i) for i in sorted(unloaded, reverse=True)]  # IndexError if the list changed meanwhile


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None, force_full_load=False):
    # weak proxies: the record must not keep a patcher alive (ComfyUI itself holds them weakly)
    calls.append(("load_models_gpu", [weakref.proxy(m) for m in models], dict(memory_required=memory_required, force_full_load=force_full_load)))
    minimum = max(minimum_inference_memory(), memory_required + extra_reserved_memory())
    for m in models:
        lm = LoadedModel(m)
        if lm in current_loaded_models:  # already known: the same entry is loaded again (as the real one does)
            lm = current_loaded_models.pop(current_loaded_models.index(lm))
        dev = torch.device(m.load_device)
        state = VRAMState.DISABLED if dev.type == "cpu" else vram_state
        budget = 0
        if lowvram_available and state in (VRAMState.LOW_VRAM, VRAMState.NORMAL_VRAM) and not force_full_load:
            free = get_free_memory(dev) + m.loaded_size()
            budget = max(0.1, max(128 * 2**20, free - minimum) - m.loaded_size())
        if state == VRAMState.NO_VRAM:
            budget = 0.1
        full = budget == 0 or m.loaded_size() + budget > m.model_size()
        m.load(dev, lowvram_model_memory=budget, force_patch_weights=force_patch_weights, full_load=full)
        lm.model_load()
        current_loaded_models.insert(0, lm)


def unload_all_models():
    calls.append(("unload_all_models",))
    free_memory(1e30, get_torch_device())


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
