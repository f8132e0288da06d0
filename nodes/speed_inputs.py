"""The optional speed inputs the Dual ControlNet Sampler and AnimateDiff Fuse share (cfg_end,
control_budget, preset), appended at the end of their optional inputs (core: zrealism_core.runtime.guidance,
zrealism_core.settings.apply_preset)."""
from __future__ import annotations

from typing import Any, Dict

from ..zrealism_core.runtime.guidance import CONTROL_BUDGETS, DEFAULT_CFG_END, DEFAULT_CONTROL_BUDGET
from ..zrealism_core.settings import DEFAULT_PRESET, PRESET_NAMES, PRESET_TRADE_OFFS


def speed_inputs() -> Dict[str, Any]:
    return {
        "cfg_end": ("FLOAT", {
            "default": DEFAULT_CFG_END, "min": 0.0, "max": 1.0, "step": 0.05,
            "tooltip": "Fraction of the steps that use classifier-free guidance (cfg). After it the negative branch is "
                       "dropped and each step costs about half. 1 = every step (default), 0.5 = the first half."}),
        "control_budget": (list(CONTROL_BUDGETS), {
            "default": DEFAULT_CONTROL_BUDGET,
            "tooltip": "full: the ControlNets run on both the prompt and the negative branch. prompt_branch: they run "
                       "once per step on the prompt branch and both branches use the result (about 20% less work per step)."}),
        "preset": (list(PRESET_NAMES), {
            "default": DEFAULT_PRESET,
            "tooltip": f"quality: the settings above as they are. fast: overrides cfg_end (0.5), control_budget "
                       f"(prompt_branch) and caps the control end at 0.6; steps unchanged. Trade-off: {PRESET_TRADE_OFFS['fast']}."}),
    }
