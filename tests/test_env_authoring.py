"""The plug-in author's path: `agentgym new-env`, `agentgym envs check`, and one-line errors for common mistakes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from guess_env import GuessEnv

from agentgym import Outcome, ToolOutput, tool
from agentgym.actions import tool_call_message
from agentgym.env_check import EnvChecker

CLI = [sys.executable, "-m", "agentgym.cli"]


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, python: str = sys.executable,
        timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "agentgym.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})})


def _venv_seeing_ours(path: Path) -> Path:
    """A fresh virtualenv that sees this one's packages (agentgym included), so installing into it is harmless."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(site, "agentgym_parent_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def test_new_env_installs_and_passes_envs_check_as_is(tmp_path):
    made = cli("new-env", "demo", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    root = tmp_path / "demo"
    pyproject = (root / "pyproject.toml").read_text()
    assert 'dependencies = ["agentgym>=0.1.0"]' in pyproject and 'demo_env = "demo_env.env:register"' in pyproject
    assert (root / "demo_env" / "manifest.json").exists() and (root / "tests" / "test_demo_env.py").exists()
    python = _venv_seeing_ours(tmp_path / "venv")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                              "--no-build-isolation", "--no-deps", "-e", str(root)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    listed = cli("envs", "list", python=str(python), cwd=tmp_path)
    assert "demo/demo-v0" in listed.stdout
    checked = cli("envs", "check", "demo/demo-v0", python=str(python), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all checks passed" in checked.stdout and "oracle solved" in checked.stdout
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root,
                           capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    again = cli("new-env", "demo", "--dir", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr


class Buggy(GuessEnv):
    """Bugs envs check must catch: a task the oracle cannot solve, and a tool that blocks the event loop."""

    env_id = "test/buggy-v0"
    tool_timeout_s = 5.0

    async def oracle_action(self):
        if self.secret == 7 and self.high == 10:
            return tool_call_message("guess", {"number": 8})  # wrong gold answer: a data bug
        return tool_call_message("guess", {"number": self.secret})

    @tool("Think for a while (blocks the loop).")
    async def think(self, topic: str) -> str:
        time.sleep(0.3)
        return "hmm"


class Clean(GuessEnv):
    @tool("Stop.", terminal=True)
    async def stop(self) -> ToolOutput:
        await asyncio.sleep(0)
        return ToolOutput("stopped", outcome=Outcome(0.0, False))


def test_envs_check_reports_oracle_failures_blocking_tools_and_passes_a_clean_env():
    report = EnvChecker("test/buggy-v0", Buggy, max_block_s=0.2).run()
    by_name = {r.name: r for r in report.results}
    assert not report.ok
    oracle = by_name["oracle solves every task"]
    assert not oracle.ok and len(oracle.details) == 1 and "range-10" in oracle.details[0]
    blocking = by_name["no tool blocks the event loop"]
    assert not blocking.ok and "tool think" in blocking.details[0]
    assert by_name["random and malformed actions, a probe of every tool"].ok and by_name["gymnasium check_env"].ok
    assert EnvChecker("test/clean-v0", Clean).run().ok


def test_envs_check_exit_code_and_one_line_errors(tmp_path):
    failed = cli("envs", "check", "agentgym/corridor-v9")
    assert failed.returncode == 2 and "did you mean agentgym/corridor-v0" in failed.stderr
    assert "Traceback" not in failed.stderr
    ok = cli("envs", "check", "agentgym/corridor-v0", "--limit", "5")
    assert ok.returncode == 0 and "all checks passed" in ok.stdout, ok.stdout + ok.stderr


def test_unknown_policy_and_unknown_task_id_are_one_line_errors(tmp_path):
    typo = cli("bench", "agentgym/corridor-v0", "--policy", "orcale", "--out", str(tmp_path / "a"))
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1
    assert "did you mean 'oracle'?" in typo.stderr and "hf, vllm" in typo.stderr and "random" in typo.stderr
    missing = cli("run", "agentgym/corridor-v0", "--policy", "oracle", "--task-id", "nope")
    assert missing.returncode == 2 and "task 'nope' is not in suite" in missing.stderr
    assert "infrastructure" not in missing.stdout + missing.stderr
