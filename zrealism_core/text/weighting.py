"""Prompt weighting with ComfyUI's syntax, read the way ComfyUI's default CLIP encoder reads it.

    (red hair:1.3)   weight 1.3 (the number replaces the weight of the enclosing group)
    (red hair)       weight x1.1; nesting multiplies: ((red hair)) = 1.21, ((red hair):1.5) = 1.65
    \\( and \\)        literal brackets

A group is a bracket pair balanced at its own level; its weight is the number after the group's
last colon when that colon is not the first character and the rest parses as a float, otherwise
the group's text keeps its colon and gets x1.1. Brackets that do not pair up (a stray "(" or ")")
are not an error in ComfyUI: they stay in the text as plain characters. We do the same so a
prompt means the same in both, and `unbalanced()` says where, for the node's report.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

# stand-ins for escaped brackets while parsing (private-use code points never typed in prompts)
_OPEN, _CLOSE = "\ue000", "\ue001"
GROUP_FACTOR = 1.1  # weight multiplier of a bracket group without an explicit number


def _escape(text: str) -> str:
    return text.replace("\\)", _CLOSE).replace("\\(", _OPEN)


def _unescape(text: str) -> str:
    return text.replace(_CLOSE, ")").replace(_OPEN, "(")


def _top_level_pieces(text: str) -> List[str]:
    """Split `text` into plain runs and top-level "(...)" groups, in order.

    The depth counter goes below zero on a stray ")"; while it is not zero, brackets are just
    characters of the current piece (which is how an unmatched bracket ends up as text)."""
    pieces: List[str] = []
    current = ""
    depth = 0
    for ch in text:
        if ch == "(":
            if depth == 0 and current:
                pieces.append(current)
                current = ""
            current += ch
            depth += 1
        elif ch == ")":
            depth -= 1
            current += ch
            if depth == 0:
                pieces.append(current)
                current = ""
        else:
            current += ch
    if current:
        pieces.append(current)
    return pieces


def _weigh(text: str, weight: float) -> List[Tuple[str, float]]:
    out: List[Tuple[str, float]] = []
    for piece in _top_level_pieces(text):
        if len(piece) < 2 or not (piece.startswith("(") and piece.endswith(")")):
            out.append((piece, weight))
            continue
        inner = piece[1:-1]
        inner_weight = weight * GROUP_FACTOR
        colon = inner.rfind(":")
        if colon > 0:
            try:
                inner_weight = float(inner[colon + 1:])
                inner = inner[:colon]
            except ValueError:
                pass  # "(a:b)": not a number, the colon is text and the group gets x1.1
        out.extend(_weigh(inner, inner_weight))
    return out


def parse_weights(text: str) -> List[Tuple[str, float]]:
    """(text, weight) segments of a prompt, in order; escaped brackets come back as plain brackets.

    >>> parse_weights("a (b:1.5) ((c))")
    [('a ', 1.0), ('b', 1.5), (' ', 1.0), ('c', 1.2100000000000002)]
    """
    return [(_unescape(seg), w) for seg, w in _weigh(_escape(str(text or "")), 1.0)]


def unbalanced(text: str) -> Optional[str]:
    """None when every unescaped bracket pairs up, else a short description of the first problem."""
    opened: List[int] = []
    text = str(text or "")
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1:i + 2] in ("(", ")"):
            i += 2  # an escaped bracket is text
            continue
        if ch == "(":
            opened.append(i)
        elif ch == ")":
            if not opened:
                return f"a ')' without a matching '(' at character {i + 1}"
            opened.pop()
        i += 1
    if opened:
        return f"a '(' that is never closed at character {opened[0] + 1}"
    return None
