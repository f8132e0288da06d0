"""FidelityReport: the scores of one still or clip, their names, and how `overall` combines them."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


GATING = ("silhouette", "edge", "color", "texture_realism")


SCORE_NAMES = ("overall", "silhouette", "edge", "color", "palette", "texture_realism", "temporal")


CONTROL_NAMES = ("edge_f", "depth_corr", "pose_pck")


@dataclass
class FidelityReport:
    """Scores (0..1, 1 = perfect), diagnostics and notes of one evaluation."""

    scores: Dict[str, float]
    diagnostics: Dict[str, Any] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    per_frame: List[Dict[str, float]] = field(default_factory=list)
    frames: int = 1
    # The scores whose geometric mean is `overall`.
    gating: List[str] = field(default_factory=lambda: list(GATING))
    # Control fidelity (edge_f, depth_corr, pose_pck; None = not computed): reported, not in `overall`.
    control: Dict[str, Optional[float]] = field(default_factory=lambda: {k: None for k in CONTROL_NAMES})
    # Images and maps for render_panel (not part of to_dict / JSON).
    artifacts: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        out = {
            "scores": dict(self.scores),
            "gating": list(self.gating),
            "frames": self.frames,
            "diagnostics": _json_safe(self.diagnostics),
            "notes": list(self.notes),
            "control": dict(self.control),
        }
        if self.per_frame:
            out["per_frame"] = [dict(s) for s in self.per_frame]
        return out

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)

    def summary(self) -> str:
        """A few readable lines: scores first, then notes."""
        parts = [f"{k} {v:.3f}" for k, v in self.scores.items()]
        lines = ["Z-Realism fidelity: " + ", ".join(parts)]
        ctrl = [f"{k} {v:.3f}" for k, v in self.control.items() if v is not None]
        if ctrl:
            lines.append("control fidelity (not in overall): " + ", ".join(ctrl))
        if self.frames > 1:
            lines.append(f"clip of {self.frames} frames (scores are frame means; temporal over the clip)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return round(v, 6) if math.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return value


def _clean(score: float) -> float:
    """Scores are finite, in 0..1, and rounded so identical inputs give exactly 1.0."""
    s = float(score)
    if not math.isfinite(s):
        return 0.0
    return round(min(1.0, max(0.0, s)), 6)


def geometric_mean(values: Sequence[float]) -> float:
    vals = [max(0.0, float(v)) for v in values]
    if not vals or min(vals) <= 0.0:
        return 0.0
    return float(math.exp(sum(math.log(v) for v in vals) / len(vals)))
