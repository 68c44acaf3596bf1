"""Choosing a sandbox backend: E2B when asked (or when ``E2B_API_KEY`` is set), else bubblewrap, else the fallback.

The choice is made once per process and name, reported by ``Sandbox.backend`` (the env puts it in
``info["sandbox"]``), and a fallback is never silent: it warns through ``warnings`` and ``logging``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from agentgym.envs.code.sandbox import local
from agentgym.envs.code.sandbox.base import Sandbox, SandboxLimits

logger = logging.getLogger("agentgym.envs.code.sandbox")
BACKENDS = ("auto", "bwrap", "fallback", "e2b")

FALLBACK_WARNING = ("bubblewrap (bwrap) was not found: agentgym's code sandbox falls back to a WEAKER isolation "
                    "(privilege drop + rlimits + unshare) that does not hide the host's file system. Install it "
                    "(apt-get install bubblewrap) before running untrusted code.")


class SandboxFallbackWarning(RuntimeWarning):
    """The weaker sandbox backend was chosen because bubblewrap is missing."""


def resolve_backend(name: str = "auto") -> str:
    """The backend a request resolves to on this machine ('bwrap', 'fallback' or 'e2b'); warns on fallback."""
    if name not in BACKENDS:
        raise ValueError(f"unknown sandbox backend {name!r}; expected one of {BACKENDS}")
    if name == "auto":
        if os.environ.get("E2B_API_KEY"):
            return "e2b"
        name = "bwrap" if local.bwrap_path() else "fallback"
        if name == "fallback":
            warnings.warn(FALLBACK_WARNING, SandboxFallbackWarning, stacklevel=2)
            logger.warning(FALLBACK_WARNING)
    elif name == "bwrap" and not local.bwrap_path():
        raise RuntimeError(f"the bwrap backend was requested but {local.BWRAP} is missing (apt-get install bubblewrap)")
    return name


def backend_class(name: str) -> type[Sandbox]:
    """The Sandbox class of a resolved backend name."""
    if name == "bwrap":
        return local.LocalSandbox
    if name == "fallback":
        from agentgym.envs.code.sandbox.fallback import FallbackSandbox

        return FallbackSandbox
    if name == "e2b":
        from agentgym.envs.code.sandbox.e2b import E2BSandbox

        return E2BSandbox
    raise ValueError(f"unknown sandbox backend {name!r}")


async def create_sandbox(backend: str = "auto", *, limits: SandboxLimits | None = None, **kwargs: Any) -> Sandbox:
    """Start a sandbox of the given backend (``auto`` picks as described in the module docstring)."""
    return await backend_class(resolve_backend(backend)).create(limits=limits, **kwargs)
