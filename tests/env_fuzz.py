"""One fuzz check every env kind's tests share: any action, however malformed, is answered, never raised."""

from __future__ import annotations

import asyncio
from typing import Any

import agentgym


def assert_step_answers(env_id: str, action: Any, **env_kwargs: Any) -> None:
    """Reset a fresh env, take `action`, and check the step returned a valid observation and no infra error."""
    async def go() -> None:
        env = agentgym.make(env_id, split="test", **env_kwargs)
        try:
            await env.areset(seed=2)
            obs, reward, _terminated, _truncated, info = await env.astep(action)
            assert obs in env.observation_space and isinstance(reward, float)
            assert "infra_error" not in info
        finally:
            await env.aclose()

    asyncio.run(go())
