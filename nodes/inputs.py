"""Widget declarations several nodes share (the shared optional groups: detail_inputs, speed_inputs)."""
from __future__ import annotations


def float_input(default: float, lo: float, hi: float, step: float, tooltip: str) -> tuple:
    """A FLOAT widget with its range, step and tooltip."""
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tooltip})
