"""Fake comfy.model_patcher.ModelPatcher (the bookkeeping attributes the real one sets)."""
from __future__ import annotations


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        self.size = size
        if not hasattr(self.model, "device"):
            self.model.device = offload_device  # the real one does this: the model must accept it
        for attr, value in (("model_loaded_weight_memory", 0), ("lowvram_patch_counter", 0), ("model_lowvram", False)):
            if not hasattr(self.model, attr):
                setattr(self.model, attr, value)

    def model_size(self) -> int:
        if self.size == 0:
            self.size = sum(t.nelement() * t.element_size() for t in self.model.state_dict().values())
        return self.size
