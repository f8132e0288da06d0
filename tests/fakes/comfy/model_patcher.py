"""Fake comfy.model_patcher.ModelPatcher: the bookkeeping attributes the real one sets, its load /
detach decisions for plain torch modules (modules without comfy.ops casting are loaded whole or
left on the offload device), and its ON_DETACH callbacks. GPU devices are bookkeeping only."""
from __future__ import annotations

import torch

from .patcher_extension import CallbacksMP


def _module_size(module) -> int:
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


def _move(module, device) -> None:
    if torch.device(device).type == "cpu":  # no GPU in the tests
        module.to(device)


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        self.callbacks: dict = {}
        self.parent = None
        if not hasattr(self.model, "device"):
            self.model.device = offload_device  # the real one does this: the model must accept it
        for attr, value in (("model_loaded_weight_memory", 0), ("lowvram_patch_counter", 0), ("model_lowvram", False)):
            if not hasattr(self.model, attr):
                setattr(self.model, attr, value)
        self.model_size()

    def model_size(self) -> int:
        if self.size == 0:
            self.size = _module_size(self.model)
        return self.size

    def loaded_size(self):
        return self.model.model_loaded_weight_memory

    def _load_list(self):
        loading = []
        for n, m in self.model.named_modules():
            params = [name for name, _ in m.named_parameters(recurse=False)]
            if params and all(name in params for name, _ in m.named_parameters(recurse=True)):
                loading.append((_module_size(m), n, m, params))
        return loading

    def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
        mem_counter = 0
        loading = self._load_list()
        loading.sort(key=lambda x: x[0], reverse=True)
        for size, _n, m, _params in loading:
            if full_load or mem_counter + size < lowvram_model_memory:
                mem_counter += size
                _move(m, device_to)
                m.comfy_patched_weights = True
        if full_load:
            _move(self.model, device_to)
            mem_counter = self.model_size()
        self.model.device = device_to
        self.model.model_loaded_weight_memory = mem_counter

    def detach(self, unpatch_all=True):
        if unpatch_all:
            _move(self.model, self.offload_device)
            self.model.device = self.offload_device
            self.model.model_loaded_weight_memory = 0
            for m in self.model.modules():
                if hasattr(m, "comfy_patched_weights"):
                    del m.comfy_patched_weights
        for callback in [c for by_key in self.callbacks.get(CallbacksMP.ON_DETACH, {}).values() for c in by_key]:
            callback(self, unpatch_all)
        return self.model

    def add_callback(self, call_type: str, callback):
        self.add_callback_with_key(call_type, None, callback)

    def add_callback_with_key(self, call_type: str, key: str, callback):
        self.callbacks.setdefault(call_type, {}).setdefault(key, []).append(callback)

    def current_loaded_device(self):
        return self.model.device
