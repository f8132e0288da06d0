"""Subcommands of the `zrealism` CLI, one module each (see zrealism_core/cli.py)."""
