"""Tiny random-weight model builders for tests and `zrealism selftest` (never used on a real job)."""
