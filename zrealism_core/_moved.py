"""Old import paths, kept one release as thin forwards to where the code lives now (issue 21).

Each old module is a stub whose module-level __getattr__ (PEP 562) looks a name up in its new
home(s) and warns once per use with a DeprecationWarning naming the new path. Nothing is imported
until a name is asked for, so the stubs add no import cost and no edge to the layer check
(zrealism_core/layers.py lists them in DEPRECATED; the core itself never imports them).
"""
from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Dict, Optional, Sequence


def forward(old: str, new: Sequence[str], renames: Optional[Dict[str, str]] = None) -> Callable[[str], Any]:
    """The __getattr__ of the stub `old`: `name` from the first of the `new` modules that has it
    (`renames` maps an old private name to its new public one)."""
    renames = renames or {}

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = renames.get(name, name)
        for module in new:
            mod = importlib.import_module(module)
            if hasattr(mod, target):
                warnings.warn(
                    f"{old}.{name} is deprecated: import {module}.{target} instead (the old path goes in the next release).",
                    DeprecationWarning, stacklevel=2,
                )
                return getattr(mod, target)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to {', '.join(new)})")

    return __getattr__
