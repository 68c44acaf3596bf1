"""agentgym.suite: task suites from the registry, without an episode-ready env, cached per (id, kwargs)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from guess_env import GuessEnv

import agentgym
from agentgym.tasks import Task, TaskSuite
from agentgym.tool_env import ToolEnv


class CountingGuessEnv(GuessEnv):
    """The README's plug-in env, counting how often it is made and closed (it declares no suite loader)."""

    made = 0
    closed = 0

    def __init__(self, **kwargs: Any):
        type(self).made += 1
        super().__init__(**kwargs)

    async def aclose(self) -> None:
        type(self).closed += 1
        await super().aclose()


@pytest.fixture
def env_constructions(monkeypatch) -> list[str]:
    """The class names of every ToolEnv constructed while the test runs (every env kind passes ToolEnv.__init__)."""
    made: list[str] = []
    original = ToolEnv.__init__

    def counting(self: ToolEnv, *args: Any, **kwargs: Any) -> None:
        made.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ToolEnv, "__init__", counting)
    return made


def test_the_second_call_returns_the_same_suite_object():
    first = agentgym.suite("agentgym/corridor-v0")
    assert isinstance(first, TaskSuite) and len(first) == 250
    assert agentgym.suite("agentgym/corridor-v0") is first


async def test_asuite_shares_the_cache_with_suite():
    first = await agentgym.asuite("agentgym/code-v0", split="test")
    assert agentgym.suite("agentgym/code-v0", split="test") is first
    assert await agentgym.asuite("agentgym/code-v0", split="test") is first


def test_different_kwargs_give_different_suites():
    short, long = agentgym.suite("agentgym/corridor-v0", horizon=3), agentgym.suite("agentgym/corridor-v0", horizon=9)
    assert short is not long
    assert (short.name, long.name) == ("corridor-T3", "corridor-T9")
    assert {t.params["horizon"] for t in short.tasks()} == {3} and {t.params["horizon"] for t in long.tasks()} == {9}


def test_a_declared_loader_builds_no_env(env_constructions):
    for env_id, kwargs in [("agentgym/code-v0", {}), ("agentgym/code-humaneval-v0", {}),
                           ("agentgym/corridor-v0", {"horizon": 5}), ("agentgym/gui-phone-v0", {}),
                           ("agentgym/web-miniwob-v0", {"tasks": ["click-button"]}), ("agentgym/web-shop-v0", {})]:
        assert len(agentgym.suite(env_id, **kwargs).tasks()) > 0, env_id
    assert env_constructions == []


def test_listing_browser_and_sandbox_suites_starts_no_process():
    script = textwrap.dedent("""
        import os, agentgym
        for env_id in ("agentgym/web-miniwob-v0", "agentgym/web-shop-v0", "agentgym/gui-phone-v0", "agentgym/code-v0"):
            assert len(agentgym.suite(env_id)) > 0
        me = str(os.getpid())
        children = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                children.append(stat.split(")")[0])
        print("CHILDREN", children)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "CHILDREN []" in out.stdout  # no Chromium, no sandbox, no worker was started


def test_the_env_serves_the_suite_its_loader_returns():
    env = agentgym.make("agentgym/corridor-v0", horizon=4)
    try:
        assert env.suite is agentgym.suite("agentgym/corridor-v0", horizon=4)  # one code path, one object
    finally:
        env.close()
    code = agentgym.make("agentgym/code-v0")
    try:
        assert code.suite is agentgym.suite("agentgym/code-v0")
    finally:
        code.close()


def test_a_plugin_without_a_loader_is_made_asked_and_closed_once():
    CountingGuessEnv.made = CountingGuessEnv.closed = 0
    agentgym.register("test/guess-counted-v0", CountingGuessEnv, max_turns=3)
    listed = agentgym.suite("test/guess-counted-v0")
    assert len(listed) == 160 and listed.name == "guess"
    assert (CountingGuessEnv.made, CountingGuessEnv.closed) == (1, 1)
    assert agentgym.suite("test/guess-counted-v0") is listed
    assert (CountingGuessEnv.made, CountingGuessEnv.closed) == (1, 1)  # cached: not made again


async def test_the_fallback_works_inside_a_running_event_loop():
    CountingGuessEnv.made = CountingGuessEnv.closed = 0
    agentgym.register("test/guess-counted-async-v0", CountingGuessEnv)
    from_async = await agentgym.asuite("test/guess-counted-async-v0")
    assert agentgym.suite("test/guess-counted-async-v0") is from_async  # sync call inside a loop: cached, no deadlock
    agentgym.register("test/guess-counted-sync-v0", CountingGuessEnv)
    assert len(agentgym.suite("test/guess-counted-sync-v0")) == 160  # sync fallback inside a loop: its own loop
    assert (CountingGuessEnv.made, CountingGuessEnv.closed) == (2, 2)


def test_a_loader_given_by_string_or_callable_gets_the_env_kwargs():
    seen: list[dict[str, Any]] = []

    def loader(**options: Any) -> TaskSuite:
        seen.append(options)
        return TaskSuite("t", "v0", [Task("t", "f", "x", {"i": options["horizon"]})], agentgym.SplitRule())

    agentgym.register("test/loader-callable-v0", "agentgym.envs.corridor.env:CorridorEnv", suite_loader=loader,
                      slack=1)
    assert agentgym.suite("test/loader-callable-v0", horizon=2).tasks()[0].params == {"i": 2}
    assert seen == [{"slack": 1, "horizon": 2}]  # registered defaults merged with the call's kwargs
    agentgym.register("test/loader-string-v0", "agentgym.envs.corridor.env:CorridorEnv",
                      suite_loader="agentgym.envs.corridor.env:suite_for")
    assert agentgym.suite("test/loader-string-v0", horizon=2).name == "corridor-T2"


def test_a_loader_returning_something_else_is_an_error():
    agentgym.register("test/loader-bad-v0", "agentgym.envs.corridor.env:CorridorEnv", suite_loader=lambda **_: [])
    with pytest.raises(TypeError, match="returned list, not a TaskSuite"):
        agentgym.suite("test/loader-bad-v0")


def test_re_registering_an_id_forgets_its_cached_suites():
    agentgym.register("test/rereg-v0", "agentgym.envs.corridor.env:CorridorEnv", horizon=3,
                      suite_loader="agentgym.envs.corridor.env:suite_for")
    assert agentgym.suite("test/rereg-v0").name == "corridor-T3"
    agentgym.register("test/rereg-v0", "agentgym.envs.corridor.env:CorridorEnv", horizon=7,
                      suite_loader="agentgym.envs.corridor.env:suite_for")
    assert agentgym.suite("test/rereg-v0").name == "corridor-T7"


def test_an_unknown_kwarg_raises_the_error_make_raises():
    with pytest.raises(agentgym.UnknownOptionError) as listing:
        agentgym.suite("agentgym/code-v0", colour="blue")
    with pytest.raises(agentgym.UnknownOptionError) as making:
        agentgym.make("agentgym/code-v0", colour="blue")
    assert str(listing.value) == str(making.value)
    assert "agentgym/code-v0 has no option 'colour'" in str(listing.value)
    assert "sandbox" in str(listing.value)  # it names the options there are


def test_an_unknown_id_raises_unknown_env_error():
    with pytest.raises(agentgym.UnknownEnvError, match="did you mean agentgym/code-v0"):
        agentgym.suite("agentgym/code-v1")


def test_a_loader_refuses_what_make_refuses():
    with pytest.raises(agentgym.SplitLeakError):
        agentgym.make("agentgym/code-humaneval-v0", split="train")
    with pytest.raises(agentgym.SplitLeakError):
        agentgym.suite("agentgym/code-humaneval-v0", split="train")
    with pytest.raises(agentgym.DatasetError, match="path= needs dataset="):
        agentgym.suite("agentgym/code-v0", path="/nonexistent")


@pytest.mark.parametrize("env_id", ["agentgym/code-v0", "agentgym/corridor-v0", "agentgym/gui-phone-v0",
                                    "agentgym/web-shop-v0"])
def test_held_out_splits_list_other_tasks_than_train(env_id):
    listed = agentgym.suite(env_id)
    train = {t.id for t in listed.tasks("train")}
    held_out = {t.id for t in listed.tasks("dev") + listed.tasks("test")}
    assert train and held_out and not train & held_out
    assert len(train) + len(held_out) == len(listed)
