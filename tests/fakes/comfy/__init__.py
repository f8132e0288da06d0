"""Fake `comfy` package for tests (see tests/fakes/README.md)."""
