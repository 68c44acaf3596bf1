"""Shared fixtures: an isolated cache directory, and the README's example env importable as a plug-in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path(__file__).resolve().parent / "plugin_example"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One cache for the whole test session (databases and suites are built once, like a user's first run).
os.environ.setdefault("AGENTGYM_CACHE", str(ROOT / ".cache" / "test-cache"))
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))


@pytest.fixture
def guess_env():
    from guess_env import GuessEnv

    env = GuessEnv(split="train")
    yield env
    env.close()
