"""The optional speed inputs the Dual ControlNet Sampler and AnimateDiff Fuse share (cfg_end,
control_budget, preset), appended at the end of their optional inputs (core: zrealism_core.runtime.guidance,
zrealism_core.settings.apply_preset)."""
from __future__ import annotations

from typing import Any, Dict

from ..zrealism_core.runtime.guidance import CONTROL_BUDGETS, DEFAULT_CFG_END, DEFAULT_CONTROL_BUDGET
from ..zrealism_core.runtime.step_reuse import DEFAULT_CONTROL_REUSE, DEFAULT_UNET_REUSE, MAX_INTERVAL
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
            "tooltip": f"balanced (default): the settings above, and on the sampler unet_reuse 2, control_reuse 2 and a channels-last VAE decode ({PRESET_TRADE_OFFS['balanced']}). "
                       f"quality: the settings above as they are (the output of earlier releases, bit for bit). "
                       f"fast: overrides cfg_end (0.5), control_budget (prompt_branch), caps the control end at 0.6 and, "
                       f"on the sampler, sets unet_reuse 2, control_reuse 2 and the channels-last decode; steps unchanged. Trade-off: {PRESET_TRADE_OFFS['fast']}."}),
    }


def step_reuse_inputs() -> Dict[str, Any]:
    """The still's step-reuse levers (zrealism_core.runtime.step_reuse), after speed_inputs (the sampler only)."""
    return {
        "control_reuse": ("INT", {
            "default": DEFAULT_CONTROL_REUSE, "min": 1, "max": MAX_INTERVAL,
            "tooltip": "1 = off here (default; the balanced and fast presets then use 2). N: inside their window the "
                       "ControlNets run every N-th step and their result is reused on the steps between (less ControlNet "
                       "work; the residuals change little late in the schedule). A value above 1 wins over the preset's."}),
        "unet_reuse": ("INT", {
            "default": DEFAULT_UNET_REUSE, "min": 1, "max": MAX_INTERVAL,
            "tooltip": "1 = off here (default; the balanced and fast presets then use 2). N: DeepCache - the full UNet "
                       "runs every N-th step; in between only its outermost blocks run, on the deep features of the last "
                       "full step (and the ControlNets only their outermost part). A value above 1 wins over the preset's."}),
    }
