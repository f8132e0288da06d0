"""Errors the user can act on: each message names the problem and the fix."""
from __future__ import annotations


class ZRealismError(Exception):
    """Base class for every error Z-Realism raises on purpose."""


class InputError(ZRealismError, ValueError):
    """An image, mask, map or parameter that cannot be used as given."""


class ModelFileError(ZRealismError, FileNotFoundError):
    """A model file that is missing, unreadable or of the wrong kind.

    The message says which file, where it was looked for, and what to put there.
    """


class CancelledError(ZRealismError):
    """The user cancelled a running job (ComfyUI's Cancel, or Ctrl-C in the CLI)."""


class EmptyHintError(InputError):
    """The image holds nothing a detail hint is made of (no edges, no strokes)."""
