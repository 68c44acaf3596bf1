"""Tool watchdogs: timeouts fire for blocking and CPU-bound handlers, and other episodes keep running meanwhile."""

from __future__ import annotations

import asyncio
import logging
import os
import time

import pytest

from agentgym import Outcome, SplitRule, Task, TaskSuite, ToolEnv, ToolError, ToolOutput, tool

TIMEOUT_S = 1.0


def call(name: str, **arguments) -> dict:
    """An assistant message calling one tool (OpenAI format)."""
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "id": "c1", "function": {"name": name, "arguments": arguments}}]}


class Hazards(ToolEnv):
    """Tools that misbehave in every way the watchdogs must catch, plus a quick one to measure concurrency."""

    env_id = "test/hazards-v0"
    max_turns = 50
    tool_timeout_s = TIMEOUT_S

    def load_suite(self) -> TaskSuite:
        return TaskSuite("hazards", "v0", [Task("h", "f", "t", {"i": i}) for i in range(3)], SplitRule())

    async def begin_episode(self, task: Task) -> list[dict]:
        self.counter = 0
        return [{"role": "user", "content": "go"}]

    @tool("Ping.")
    async def ping(self) -> str:
        await asyncio.sleep(0.02)
        return "pong"

    @tool("Blocking code inside an async handler, isolated in a killable process.", isolate="process")
    async def nap(self) -> str:
        time.sleep(60)
        return "rested"

    @tool("CPU-bound plain handler, isolated in a killable process.", isolate="process")
    def spin(self) -> str:
        while True:
            pass

    @tool("CPU-heavy arithmetic, isolated.", isolate="process")
    def power(self, digits: int) -> str:
        return str(len(str(7 ** digits)))

    @tool("A plain handler that blocks; it runs in a worker thread.")
    def doze(self, seconds: float) -> str:
        time.sleep(seconds)
        return "awake"

    @tool("An async handler that blocks the event loop (the bug the monitor reports).")
    async def hog(self, seconds: float) -> str:
        time.sleep(seconds)
        return "done"

    @tool("Changes state in an isolated process and reports its pid.", isolate="process")
    def mutate(self) -> str:
        self.counter += 1
        if self.counter > 0:
            return f"{os.getpid()} {self.counter}"
        raise AssertionError("unreachable")

    @tool("Rejects the agent's input from an isolated process.", isolate="process")
    def reject(self, text: str) -> str:
        raise ToolError(f"bad input: {text}")

    @tool("Finish.", terminal=True)
    async def finish(self) -> ToolOutput:
        return ToolOutput("bye", outcome=Outcome(1.0, True))


async def started(env: Hazards) -> Hazards:
    await env.areset(seed=0, options={"task_id": env.suite.tasks()[0].id})
    return env


async def timed_step(env: Hazards, action: dict) -> tuple[float, tuple]:
    t0 = time.perf_counter()
    result = await env.astep(action)
    return time.perf_counter() - t0, result


async def pings_during(env: Hazards, stop: asyncio.Event) -> int:
    """Steps another episode completes until `stop` is set."""
    done = 0
    while not stop.is_set():
        obs, *_ = await env.astep(call("ping"))
        assert "pong" in obs["messages"][0]["content"]
        done += 1
    return done


@pytest.mark.parametrize("tool_name", ["nap", "spin"])
async def test_isolated_blocking_and_cpu_bound_tools_time_out_while_others_run(tool_name):
    slow, other = await started(Hazards()), await started(Hazards())
    stop = asyncio.Event()
    pinger = asyncio.create_task(pings_during(other, stop))
    elapsed, (obs, reward, terminated, truncated, info) = await timed_step(slow, call(tool_name))
    stop.set()
    pings = await pinger
    print(f"{tool_name}: timed out after {elapsed:.2f} s; the other episode took {pings} steps meanwhile")
    # A timeout cannot fire early. How late it fires depends on the machine's load (about 1.0 s when idle), so
    # the upper bound only proves that the timeout, not the end of the work (60 s, or never), ended the call.
    assert TIMEOUT_S - 0.05 <= elapsed < 30
    assert truncated and info["infra_error"]["type"] == "EnvTimeoutError" and tool_name in info["infra_error"]["message"]
    assert pings >= 2  # a blocked loop would allow at most one (an idle machine fits about 50)


async def test_a_plain_handler_that_blocks_runs_in_a_thread_and_times_out_on_time():
    slow, other = await started(Hazards()), await started(Hazards())
    stop = asyncio.Event()
    pinger = asyncio.create_task(pings_during(other, stop))
    elapsed, (*_, truncated, info) = await timed_step(slow, call("doze", seconds=30))
    stop.set()
    assert TIMEOUT_S - 0.05 <= elapsed < 30   # the timeout ended the call, not the 30 s of work
    assert truncated and "doze" in info["infra_error"]["message"]
    assert await pinger >= 2  # a blocked loop would allow at most one
    ok = await started(Hazards())
    obs, *_ = await ok.astep(call("doze", seconds=0.01))
    assert "awake" in obs["messages"][0]["content"]


async def test_an_async_handler_blocking_the_loop_is_named_and_counted_as_a_timeout(caplog):
    caplog.set_level(logging.WARNING, logger="agentgym.watchdog")
    env = await started(Hazards())
    # stalls 1.5 s past the monitor's 1 s threshold: its watcher thread (woken every 50 ms) has that long to look
    *_, truncated, info = await env.astep(call("hog", seconds=TIMEOUT_S + 1.5))
    assert truncated and info["loop_blocked"][0]["tool"] == "hog" and info["loop_blocked"][0]["seconds"] >= TIMEOUT_S
    assert "blocked the event loop" in info["infra_error"]["message"] and "isolate='process'" in info["infra_error"]["message"]
    # the live monitor noticed while the loop was stuck, and said which tool held it
    assert any("by tool hog" in r.getMessage() for r in caplog.records)
    # a stall shorter than the tool timeout (by a margin no scheduling delay eats) is a warning in info, not a failure
    env = await started(Hazards(tool_timeout_s=30.0))
    obs, _, _, truncated, info = await env.astep(call("hog", seconds=0.6))
    assert not truncated and "done" in obs["messages"][0]["content"] and info["loop_blocked"][0]["tool"] == "hog"


async def test_process_isolation_returns_results_and_tool_errors_but_not_state():
    env = await started(Hazards())
    obs, *_ = await env.astep(call("power", digits=2000))
    assert obs["messages"][0]["content"].startswith("1691")  # 7**2000 has 1691 digits
    obs, *_ = await env.astep(call("mutate"))
    pid, counter = obs["messages"][0]["content"].split()[:2]
    assert int(pid) != os.getpid() and counter == "1" and env.counter == 0  # the child changed its own copy
    obs, _, _, truncated, info = await env.astep(call("reject", text="xyz"))
    assert not truncated and "bad input: xyz" in obs["messages"][0]["content"] and info["tool_errors"] == 1
