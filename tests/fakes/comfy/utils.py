"""Fake comfy.utils.ProgressBar: records updates; like ComfyUI's server hook, each update raises
InterruptProcessingException when the user pressed Cancel."""
from __future__ import annotations

from . import model_management

bars: list = []


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0
        self.updates: list = []
        self.previews: list = []
        bars.append(self)

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        self.current = value
        self.updates.append((value, self.total))
        if preview is not None:
            self.previews.append(preview)
        model_management.throw_exception_if_processing_interrupted()

    def update(self, value):
        self.update_absolute(self.current + value)
