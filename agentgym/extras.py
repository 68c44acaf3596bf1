"""Optional dependencies: import them lazily and say which extra installs a missing one."""

from __future__ import annotations

import importlib
from types import ModuleType

from agentgym.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise MissingExtraError naming the `agentgym[extra]` that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"'{module}' is needed for this feature but is not installed; "
            f"install it with: pip install 'agentgym[{extra}]'"
        ) from exc
