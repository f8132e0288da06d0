"""Sampler/scheduler choice by name (ComfyUI-style names), built from the model's scheduler config.

Why a table: the node's combo, the CLI's --scheduler and the engine share one list of names.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from ..errors import InputError

# name -> (diffusers class name, extra config)
SCHEDULERS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    # few-step samplers for LCM / TCD / Hyper-SD LoRAs (4-8 steps, cfg 1-2; cfg <= 1 runs without CFG)
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
SCHEDULER_NAMES = list(SCHEDULERS)
DEFAULT_SCHEDULER = "dpmpp_2m_karras"


def make_scheduler(name: str, base_config: Mapping[str, Any]) -> Any:
    """A fresh scheduler `name` carrying the model's training schedule (betas etc.) from `base_config`."""
    import diffusers

    key = (name or DEFAULT_SCHEDULER).strip().lower().replace(" ", "_").replace("++", "pp")
    if key not in SCHEDULERS:
        raise InputError(f"scheduler {name!r} is not known; choose one of: {', '.join(SCHEDULER_NAMES)}.")
    cls_name, extra = SCHEDULERS[key]
    cls = getattr(diffusers, cls_name)
    config = {k: v for k, v in dict(base_config).items() if not k.startswith("_")}
    config.update(extra)
    return cls.from_config(config)
