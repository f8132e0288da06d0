"""The CLI's LoRA and IP-Adapter flags, shared by `zrealism transform` and `zrealism run`:

    --lora FILE[:STRENGTH]   (repeatable; strength 1 when omitted)
    --ip-adapter FILE --clip-vision FILE [--ip-weight W]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import InputError


def add_arguments(p: Any) -> None:
    p.add_argument("--lora", action="append", default=[], metavar="FILE[:STRENGTH]",
                   help="an SD1.5 LoRA (kohya/A1111, LyCORIS, diffusers/peft), strength -4..4 (default 1); repeatable")
    p.add_argument("--ip-adapter", type=Path, metavar="FILE",
                   help="an SD1.5 IP-Adapter (ip-adapter / -plus / -plus-face _sd15); the input drawing is the reference image")
    p.add_argument("--clip-vision", type=Path, metavar="FILE", help="the IP-Adapter's image encoder, CLIP ViT-H/14 (one file)")
    p.add_argument("--ip-weight", type=float, default=0.6, help="IP-Adapter weight 0..2 (default 0.6; 0 = off)")


def parse_lora(value: str) -> Tuple[Path, float]:
    """FILE[:STRENGTH] -> (path, strength); a colon that is part of the path (C:\\...) stays in it."""
    head, sep, tail = str(value).rpartition(":")
    if sep and head and not tail.startswith(("\\", "/")):
        try:
            return Path(head), float(tail)
        except ValueError:
            pass
    return Path(value), 1.0


def lora_list(values: Sequence[str]) -> List[Tuple[Path, float]]:
    return [parse_lora(v) for v in values or ()]


def check(args: argparse.Namespace) -> None:
    if getattr(args, "clip_vision", None) and not getattr(args, "ip_adapter", None):
        raise InputError("--clip-vision is the IP-Adapter's image encoder; give --ip-adapter FILE too.")


def view(pipe: Any, loras: Sequence[Tuple[Any, float]], ip_adapter: Optional[Any], clip_vision: Optional[Any],
         ip_weight: float, reference: Any) -> Any:
    from ..adapters.views import with_adapters

    return with_adapters(pipe, loras, ip_adapter, clip_vision, ip_weight, reference)
