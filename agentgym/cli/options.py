"""Option formats shared by the CLI's commands (one parser for each, so every command reads them alike)."""

from __future__ import annotations

import json
from typing import Any

import typer


def parse_key_values(pairs: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` options (``--env split=test``); values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
