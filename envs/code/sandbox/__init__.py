"""Sandboxes for untrusted Python, behind one E2B-shaped API: bubblewrap (default), E2B, and a weaker fallback."""

from agentgym.envs.code.sandbox.backends import SandboxFallbackWarning, create_sandbox, resolve_backend
from agentgym.envs.code.sandbox.base import (
    Execution,
    ExecutionError,
    Logs,
    Result,
    Sandbox,
    SandboxError,
    SandboxLimits,
)

__all__ = ["Execution", "ExecutionError", "Logs", "Result", "Sandbox", "SandboxError", "SandboxFallbackWarning",
           "SandboxLimits", "create_sandbox", "resolve_backend"]
