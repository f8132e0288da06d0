"""Prompt text: CLIP token counting."""
