"""Test helpers for the engine tests: fake ComfyUI modules and shared tiny models (see README.md)."""
