"""Fidelity and realism scores of a result against its 2D source drawing, and the panel that shows them.

score.py   evaluate() for a still, evaluate_video() for a clip: inputs, masks, control fidelity
report.py  FidelityReport and how `overall` combines the gating scores
panel.py   render_panel(): source | result | per-score picture
"""
from __future__ import annotations

from .panel import render_panel
from .report import CONTROL_NAMES, GATING, SCORE_NAMES, FidelityReport, geometric_mean
from .score import evaluate, evaluate_video

__all__ = ["CONTROL_NAMES", "GATING", "SCORE_NAMES", "FidelityReport", "evaluate", "evaluate_video",
           "geometric_mean", "render_panel"]
