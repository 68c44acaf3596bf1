"""ManagedServer/HFServer: health polling, process-group stop, start failures, watchdog restarts, and a
rollout run that survives its server being killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("fastapi")

import agentgym  # noqa: E402
from agentgym.policies.hf_server import HFServer  # noqa: E402
from agentgym.policies.server import ManagedServer, ServerStartError  # noqa: E402
from agentgym.processes import alive, group_members  # noqa: E402
from agentgym.policies.token_policy import TokenPolicy  # noqa: E402
from agentgym.rollout import INFRA_TERMINATIONS, RolloutConfig, RolloutEngine, make_jobs  # noqa: E402
from test_token_policy import sql_env_start, sql_model  # noqa: E402  (shared cached model)


@pytest.fixture(scope="module")
def sql_dir():
    return sql_model()


class ScriptServer(ManagedServer):
    """A 'server' that is any Python snippet (for failure paths; it never serves /health)."""

    def __init__(self, code: str, **kwargs):
        super().__init__(**kwargs)
        self.code = code

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.code]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_server_that_exits_while_starting_raises_with_its_log_tail():
    server = ScriptServer("import sys; print('boom: bad weights'); sys.exit(3)")
    with pytest.raises(ServerStartError, match="boom: bad weights") as info:
        await server.start(timeout_s=20)
    assert "code 3" in str(info.value)
    assert not server.alive


async def test_a_server_that_never_gets_healthy_times_out_and_its_whole_group_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(300)\n")
    server = ScriptServer(code, stop_timeout_s=2)
    with pytest.raises(ServerStartError, match="not healthy after 2 s"):
        await server.start(timeout_s=2)
    child = int(pid_file.read_text())
    assert not server.alive
    assert server.last_stop is not None and server.last_stop.clean
    assert group_members(server.pid) == []
    assert not alive(child), "the server's child process outlived stop()"


async def test_stop_waits_for_children_that_ignore_sigterm_and_outlive_the_leader(tmp_path):
    pid_file = tmp_path / "child.pid"
    # the child ignores SIGTERM (inherited through exec) and the leader exits on SIGTERM at once: the stop must
    # not return when the leader is gone, only once the SIGKILLed child is gone too
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "child = subprocess.Popen(['sleep', '300'])\n"
            "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(300)\n")
    server = ScriptServer(code, stop_timeout_s=0.5)
    server._spawn()
    async with asyncio.timeout(60):
        while not pid_file.exists() or not pid_file.read_text():   # the child exists once its pid is written
            assert server.alive, "the script exited before starting its child"
            await asyncio.sleep(0.01)
    child, pgid = int(pid_file.read_text()), server.pid
    assert group_members(pgid) == sorted([pgid, child])
    report = await server.stop()
    assert report.signals == ["SIGTERM", "SIGKILL"] and report.survivors == []
    assert server.last_stop is report
    assert group_members(pgid) == [] and not alive(child) and not server.alive


async def test_hf_server_starts_healthy_in_its_own_process_group_and_stops(sql_dir):
    server = HFServer(sql_dir)
    assert server.base_url.endswith("/v1") and not server.alive
    async with server:
        assert server.alive and await server.healthy()
        assert os.getpgid(server.pid) == server.pid  # its own group: stop() can kill the whole tree
        models = await server.request("GET", "/v1/models")
        assert models["data"][0]["id"] == server.model_name == sql_dir.name
        pid, port = server.pid, server.port
    assert not server.alive and not alive(pid) and not _port_open(port)
    assert server.last_stop.clean and group_members(pid) == []
    assert server.log_path.exists()


class KillingPolicy(TokenPolicy):
    """Kills the server with SIGKILL shortly after sending its `kill_at`-th request (so that one is in flight)."""

    def __init__(self, *args, server: HFServer, kill_at: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.server, self.kill_at, self.calls = server, kill_at, 0

    async def act(self, observation, tools):
        self.calls += 1
        if self.calls == self.kill_at:
            pid = self.server.pid
            asyncio.get_running_loop().call_later(0.03, os.kill, pid, signal.SIGKILL)
        return await super().act(observation, tools)


async def test_watchdog_restarts_a_server_killed_mid_run_with_its_weights_and_no_episode_is_lost(sql_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    perturbed = AutoModelForCausalLM.from_pretrained(sql_dir)
    with torch.no_grad():
        perturbed.lm_head.weight.add_(0.05)
    perturbed.save_pretrained(tmp_path / "step1")
    async with HFServer(sql_dir, watchdog=True, watchdog_interval_s=0.2) as server:
        assert await server.load_weights(tmp_path / "step1") == 1
        port, first_pid = server.port, server.pid
        policy = KillingPolicy(sql_dir, [server.base_url], server=server, kill_at=5, max_tokens=16,
                               temperature=1.0, max_retries=8, backoff_s=0.5, max_backoff_s=4.0)
        async with policy:
            engine = RolloutEngine(lambda: agentgym.make("agentgym/sql-v0"), policy,
                                   RolloutConfig(concurrency=2, max_infra_retries=3, policy_timeout_s=120))
            jobs = make_jobs(sql_env_start()[2][:2], samples_per_task=2)
            records = await engine.run(jobs)
        assert server.restarts >= 1 and server.pid != first_pid and server.port == port
        health = await server.request("GET", "/health")
    assert sorted(r.key for r in records) == sorted(j.key for j in jobs)  # every job ends with a record
    assert all(r.termination not in INFRA_TERMINATIONS and r.scored for r in records), \
        [(r.key, r.termination, r.infra_errors) for r in records]
    hit = [r for r in records if any(e.get("where") == "policy" for e in r.infra_errors)]
    assert hit, "the episode in flight when the server died should record a policy failure"
    assert all(r.attempts >= 2 for r in hit)
    # the restarted server reloaded the last weights: no silent rollback to the initial checkpoint
    assert health["model_version"] == 1
    assert {t.model_version for r in records for t in r.turns} == {1}
