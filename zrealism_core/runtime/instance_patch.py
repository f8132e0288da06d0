"""One way to put a wrapper over a module's method for the length of a job, and take it off again."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def method_replaced(obj: Any, name: str, replacement: Callable[..., Any]) -> Iterator[None]:
    """While active, obj.<name> is `replacement` (an instance attribute over the class's method).

    On exit the instance goes back to what it had: another instance-level wrapper (a profiler, an outer
    lever of ours) is put back, otherwise the attribute is removed so the class's method shows through again.
    """
    missing = object()
    before = obj.__dict__.get(name, missing)
    setattr(obj, name, replacement)
    try:
        yield
    finally:
        if before is missing:
            obj.__dict__.pop(name, None)
        else:
            setattr(obj, name, before)
