"""The states a queued job reports, in the order it goes through them (fixed: clients match on them).

Celery's own PENDING, SUCCESS and FAILURE frame ours. Each running state carries the meta
{stage, step, total, device, notes, attempt, worker}; a job that is redelivered after its worker died
starts its states again, with meta.attempt one higher.
"""
from __future__ import annotations

from typing import Dict, Optional

PENDING = "PENDING"  # queued, or not yet picked up (Celery says PENDING for an unknown id too)
LOADING_MODELS = "LOADING_MODELS"  # only when the worker's models are not warm
ALLOCATING_VRAM = "ALLOCATING_VRAM"  # prep, analysis, the memory estimate and the placement (on the CPU too)
SYNTHESIZING = "SYNTHESIZING"  # the still's sampling steps (step / total rise)
ANIMATING = "ANIMATING"  # the clip's sampling steps (--video only)
EVALUATING = "EVALUATING"  # fidelity, realism (and temporal) scores, the report picture
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"  # with the message `zrealism run` would print; a cancelled job ends here too

STATES = (PENDING, LOADING_MODELS, ALLOCATING_VRAM, SYNTHESIZING, ANIMATING, EVALUATING, SUCCESS, FAILURE)
RUNNING = STATES[1:6]
DONE = (SUCCESS, FAILURE)

# runner.run_image's events -> the state they belong to ("prep", "analyze" and "place" come before
# the first sampling step, on the device the job is being placed on)
STAGE_STATES: Dict[str, str] = {
    "load models": LOADING_MODELS, "prep": ALLOCATING_VRAM, "analyze": ALLOCATING_VRAM, "place": ALLOCATING_VRAM,
    "still": SYNTHESIZING, "video": ANIMATING, "evaluate": EVALUATING,
}


def order(state: str) -> int:
    """Position of a state in STATES (unknown states, e.g. Celery's RETRY, sort with PENDING)."""
    return STATES.index(state) if state in STATES else 0


def progress(state: str, meta: Optional[dict] = None) -> float:
    """0..1: how far along the job is, from its state and the step within it (monotone over one attempt)."""
    if state in DONE:
        return 1.0
    meta = meta or {}
    step, total = int(meta.get("step") or 0), int(meta.get("total") or 0)
    within = min(1.0, step / total) if total > 0 else 0.0
    return round((order(state) + within) / (len(STATES) - 2), 4)
