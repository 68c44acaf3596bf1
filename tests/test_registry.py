"""Registry and plug-ins: register/make, gymnasium.make, and entry-point discovery of third-party envs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium
import pytest

import agentgym
from agentgym.errors import UnknownEnvError

EXAMPLE = Path(__file__).parent / "plugin_example"


def test_builtin_sql_env_is_registered_with_both_registries():
    assert "agentgym/sql-v0" in agentgym.registry()
    assert "agentgym/sql-v0" in gymnasium.registry


def test_register_and_make_with_kwargs():
    agentgym.register("test/guess-v9", "guess_env:GuessEnv", max_turns=3)
    env = agentgym.make("test/guess-v9", split="test")
    assert env.max_turns == 3 and env.split == "test"
    assert agentgym.make("test/guess-v9", max_turns=5).max_turns == 5
    assert env.spec is not None and env.spec.id == "test/guess-v9"


def test_unknown_id_suggests_close_matches():
    with pytest.raises(UnknownEnvError, match="did you mean agentgym/sql-v0"):
        agentgym.make("agentgym/sql-v1")


def _install_plugin(site: Path, *, broken: bool = False) -> None:
    """A minimal installed distribution: a module plus a dist-info with an agentgym.envs entry point."""
    (site / "guess_env.py").write_text((EXAMPLE / "guess_env.py").read_text())
    dist = site / "agentgym_guess_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: agentgym-guess-plugin\nVersion: 0.1\n")
    lines = ["[agentgym.envs]", "guess = guess_env:register"]
    if broken:
        lines.append("broken = no_such_module:register")
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_an_installed_plugin_is_discovered_listed_and_runs(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _install_plugin(site, broken=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    script = textwrap.dedent("""
        import warnings, agentgym, gymnasium
        warnings.simplefilter("ignore")
        assert "example/guess-v0" in agentgym.registry()
        env = gymnasium.make("example/guess-v0")   # registered with gymnasium too
        obs, info = env.reset(seed=2)
        inner = env.unwrapped
        obs, reward, terminated, truncated, info = env.step(inner._run(inner.oracle_action()))
        env.close()
        print("REWARD", reward, terminated)
    """)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "REWARD 1.0 True" in out.stdout
    listed = subprocess.run([sys.executable, "-m", "agentgym.cli", "envs", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "example/guess-v0" in listed.stdout and "agentgym/sql-v0" in listed.stdout
    assert "broken" in listed.stdout and "failed to load" in listed.stdout  # a broken plug-in is reported, not fatal
