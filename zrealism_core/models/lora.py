"""Deprecated old path: moved to zrealism_core.adapters.lora (kept one release; see zrealism_core/_moved.py)."""
from .._moved import forward

__getattr__ = forward(__name__, ["zrealism_core.adapters.lora"])
