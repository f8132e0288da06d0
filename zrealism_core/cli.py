"""`zrealism` command line: one subcommand per module in zrealism_core/commands/.

Exit codes: 0 success, 1 unexpected failure, 2 bad arguments or unusable input/models
(the message says what to fix), 130 cancelled.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from . import __version__
from .errors import CancelledError, ZRealismError

# Each module defines `register(subparsers)`, which adds its parser and sets `func=handler(args) -> int`.
_COMMANDS = [
    "prep",
    "analyze",
    "evaluate",
    "transform",
    "run",
    "selftest",
    "queue",  # worker, submit, status, result, cancel
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zrealism",
        description="Z-Realism: 2D character drawing -> photorealistic still and clip, with fidelity scores.",
    )
    parser.add_argument("--version", action="version", version=f"zrealism {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CancelledError as exc:
        print(f"zrealism: cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("zrealism: cancelled", file=sys.stderr)
        return 130
    except ZRealismError as exc:
        print(f"zrealism: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
