"""``agentgym new-env NAME``: a plug-in package that installs, registers and passes ``agentgym envs check`` as is.

The scaffold is a working multi-turn env (look a value up, then submit it) with everything a plug-in
needs and nothing it must guess: a pyproject that depends on this agentgym (not the unrelated PyPI
project of the same name) and declares the entry point, a task suite with held-out splits and a pinned
manifest written from the suite itself, an oracle that plays several turns, and tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

from agentgym import __version__
from agentgym.errors import AgentGymError

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "agentgym-{dist}"
version = "0.1.0"
description = "The {env_id} environment for agentgym."
requires-python = ">=3.11"
# agentgym is installed from its own repository (pip install -e path/to/agentgym); the floor keeps pip from
# ever picking the unrelated, older project called "agentgym" on PyPI.
dependencies = ["agentgym>={version}"]

[project.optional-dependencies]
dev = ["pytest>=8", "pytest-asyncio>=0.23"]

# How agentgym finds this env: `agentgym envs list`, agentgym.make and gymnasium.make all see it.
[project.entry-points."agentgym.envs"]
{module} = "{module}.env:register"

[tool.setuptools]
packages = ["{module}"]

[tool.setuptools.package-data]
{module} = ["manifest.json"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
'''

ENV_MODULE = '''"""The {env_id} environment: look a value up in a small table, then submit it (two turns at least).

Replace the task generator and the tools with your own; keep the shape: tasks are data, tools are
``@tool`` methods, the outcome comes from a terminal tool, and the oracle plays the reference solution.
"""

from __future__ import annotations

import random
from pathlib import Path

import agentgym
from agentgym import Outcome, SplitRule, Task, TaskSuite, ToolEnv, ToolError, ToolOutput, tool
from agentgym.actions import tool_call_message

ENV_ID = "{env_id}"
SIZES = (3, 5, 8)
TASKS_PER_SIZE = 40


def make_task(seed: int, size: int) -> Task:
    """One task: a table of `size` keys with values, and the key asked about (all derived from the seed)."""
    rng = random.Random(f"{{seed}}:{{size}}")
    keys = rng.sample(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
                       "juliet", "kilo", "lima"], size)
    table = {{k: str(rng.randint(100, 999)) for k in keys}}
    # params define the task (and its id); data is derived from them
    return Task(kind="lookup", family=f"size-{{size}}", template="value-of-key", params={{"seed": seed, "size": size}},
                data={{"table": table, "key": rng.choice(keys)}}, difficulty="hard" if size > 5 else "easy")


class {cls}(ToolEnv):
    """Find the value stored under a key: ``read(key)`` shows it, ``submit(answer)`` ends the episode."""

    env_id = ENV_ID
    max_turns = 6
    tool_timeout_s = 10.0

    def load_suite(self) -> TaskSuite:
        tasks = [make_task(seed, size) for size in SIZES for seed in range(TASKS_PER_SIZE)]
        # OOD test: the largest tables are never trained on; the rest are split by a hash (IID dev/test)
        return TaskSuite("{name}", "v0", tasks, SplitRule(ood_test_families=frozenset({{"size-8"}})),
                         pinned_path=Path(__file__).with_name("manifest.json"))

    async def begin_episode(self, task: Task) -> list[dict]:
        self.table = dict(task.data["table"])
        self.key = task.data["key"]
        self.revealed = False
        return [{{"role": "system", "content": "Use the tools: read(key) shows a value, submit(answer) answers."}},
                {{"role": "user", "content": f"What value is stored under the key {{self.key!r}}? "
                                            f"Keys: {{', '.join(sorted(self.table))}}."}}]

    @tool("Show the value stored under a key.", params={{"key": "one of the listed keys"}})
    async def read(self, key: str) -> str:
        if key not in self.table:
            raise ToolError(f"no key {{key!r}}; keys: {{', '.join(sorted(self.table))}}")  # the agent's mistake
        if key == self.key:
            self.revealed = True
        return f"{{key}} = {{self.table[key]}}"

    @tool("Submit the answer; this ends the episode.", terminal=True, params={{"answer": "the value"}})
    async def submit(self, answer: str) -> ToolOutput:
        correct = answer.strip() == self.table[self.key]
        return ToolOutput("correct" if correct else "wrong", outcome=Outcome(1.0 if correct else 0.0, correct))

    async def oracle_action(self) -> dict | None:
        """The reference next action; called before every turn, so it reads the episode's state."""
        if self.task is None:
            return None
        if not self.revealed:
            return tool_call_message("read", {{"key": self.key}})
        return tool_call_message("submit", {{"answer": self.table[self.key]}})


def register() -> None:
    """The entry point named in pyproject.toml: registers the env when agentgym loads plug-ins."""
    agentgym.register(ENV_ID, "{module}.env:{cls}", description="Look a value up, then submit it.")
'''

INIT = '''"""The {env_id} agentgym environment (registered through the "agentgym.envs" entry point)."""

from {module}.env import {cls}, register

__all__ = ["{cls}", "register"]
'''

TESTS = '''"""The env passes agentgym's checks, its oracle plays several turns, and agent mistakes are observations."""

from __future__ import annotations

import agentgym
from agentgym.env_check import EnvChecker
from {module}.env import ENV_ID, {cls}


def test_registered_through_the_entry_point():
    assert ENV_ID in agentgym.registry()


def test_passes_every_check():
    report = EnvChecker(ENV_ID, {cls}).run()
    failed = [(r.name, r.details) for r in report.results if not r.ok]
    assert report.ok, failed


async def test_the_oracle_reads_before_it_submits():
    env = {cls}(split="test")
    await env.areset(seed=0)
    first = await env.oracle_action()
    *_, terminated, _, _ = await env.astep(first)
    assert first["tool_calls"][0]["function"]["name"] == "read" and not terminated
    obs, reward, terminated, _, info = await env.astep(await env.oracle_action())
    assert terminated and reward == 1.0 and info["outcome"]["success"]
    await env.aclose()


async def test_a_wrong_key_is_an_observation_not_a_crash():
    env = {cls}(split="train")
    await env.areset(seed=1)
    obs, reward, terminated, truncated, info = await env.astep(
        '<tool_call>{{"name": "read", "arguments": {{"key": "zulu"}}}}</tool_call>')
    assert "no key" in obs["messages"][0]["content"] and not (terminated or truncated) and info["tool_errors"] == 1
    await env.aclose()
'''

README = '''# agentgym-{dist}

The `{env_id}` environment for agentgym: `{cls}` in `{module}/env.py`.

    pip install -e path/to/agentgym      # agentgym itself, from its repository
    pip install -e .                     # this plug-in (registers {env_id} through its entry point)
    agentgym envs check {env_id}         # contract, oracle on every task, malformed actions, blocking tools
    pytest                               # this package's own tests

After changing the task generator, re-pin the held-out manifests (benchmarks refuse silently changed
splits as 'not comparable'): `agentgym manifest {env_id} --write {module}/manifest.json`.
Run Python from this directory or any other, but not from the directory that holds the agentgym clone:
a folder called `agentgym` there would shadow the installed package.
'''


def plugin_names(name: str) -> dict[str, str]:
    """The names derived from an env name: distribution, module, class and env id."""
    if not _NAME.match(name):
        raise AgentGymError(f"env name {name!r}: use lower-case letters, digits, '-' or '_', starting with a letter")
    module = name.replace("-", "_") + "_env"
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name)) + "Env"
    return {"name": name, "dist": name.replace("_", "-"), "module": module, "cls": cls,
            "env_id": f"{name}/{name}-v0", "version": __version__}


def scaffold_env(name: str, parent: str | Path = ".") -> Path:
    """Write the plug-in package `name` under `parent` (refusing to overwrite) and return its directory."""
    names = plugin_names(name)
    root = Path(parent) / name
    if root.exists():
        raise AgentGymError(f"{root} already exists; choose another name or directory")
    package = root / names["module"]
    (root / "tests").mkdir(parents=True)
    package.mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT.format(**names))
    (root / "README.md").write_text(README.format(**names))
    (package / "__init__.py").write_text(INIT.format(**names))
    (package / "env.py").write_text(ENV_MODULE.format(**names))
    (root / "tests" / f"test_{names['module']}.py").write_text(TESTS.format(**names))
    (package / "manifest.json").write_text(json.dumps(_pinned_manifest(package / "env.py", names), indent=1) + "\n")
    return root


def _pinned_manifest(env_file: Path, names: dict[str, str]) -> dict:
    """The pinned manifest of the freshly written env, computed from its own suite (what `agentgym manifest --write` does)."""
    spec = importlib.util.spec_from_file_location(f"_agentgym_scaffold_{names['module']}", env_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing resolve the module by name while it loads
    try:
        spec.loader.exec_module(module)
        return getattr(module, names["cls"])().suite.pinned()
    finally:
        sys.modules.pop(spec.name, None)
