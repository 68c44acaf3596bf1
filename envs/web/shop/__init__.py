"""The generated shop (``agentgym/web-shop-v0``): catalog generator, in-process app, WebShop reward, env.

``ShopEnv`` is imported lazily, so ``import agentgym.envs.web.shop.catalog`` needs no browser packages.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ShopEnv"]


def __getattr__(name: str) -> Any:
    if name == "ShopEnv":
        from agentgym.envs.web.shop.env import ShopEnv

        return ShopEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
