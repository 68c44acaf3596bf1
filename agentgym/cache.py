"""Where generated artefacts (databases, indexes, task suites) are built on first use."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a directory under the agentgym cache: $AGENTGYM_CACHE, else ~/.cache/agentgym."""
    root = os.environ.get("AGENTGYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "agentgym"
    )
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
