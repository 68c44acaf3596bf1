"""agentgym.processes: stopping real process groups and pid sets leaves nothing alive, or names what survived.

Every test starts real processes and synchronises on a line they print once they are ready (never on a
sleep); after a stop it checks /proc directly, so "returned" and "gone" cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentgym.processes import (
    alive,
    cmdline,
    descendants,
    group_members,
    kill_group_now,
    proc_info,
    snapshot,
    stop_group,
    stop_group_sync,
    stop_pids,
    stop_pids_sync,
)

# A group leader that starts `n` children in its own group, prints their pids, then waits (or exits at once).
LEADER = textwrap.dedent("""
    import signal, subprocess, sys, time
    n, ignore_term, leader_exits = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # inherited by the children across exec
    kids = [subprocess.Popen(["sleep", "300"]) for _ in range(n)]
    print(" ".join(str(k.pid) for k in kids), flush=True)
    if not leader_exits:
        time.sleep(300)
""")


def start_group(n: int, *, ignore_term: bool = False, leader_exits: bool = False) -> tuple[subprocess.Popen, list[int]]:
    """A Popen leader in a new session with `n` children in its group; returns once all of them exist."""
    proc = subprocess.Popen([sys.executable, "-c", LEADER, str(n), str(int(ignore_term)), str(int(leader_exits))],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    kids = [int(p) for p in proc.stdout.readline().split()]
    proc.stdout.close()
    return proc, kids


def assert_all_gone(pids: list[int]) -> None:
    """No pid is a live process any more (a zombie left for init to reap counts as gone)."""
    for pid in pids:
        info = proc_info(pid)
        assert info is None or info.state in "ZX", (pid, info, cmdline(pid))


async def test_a_group_that_ignores_sigterm_is_killed_and_the_stop_waits_for_every_member():
    proc, kids = start_group(3, ignore_term=True)
    assert group_members(proc.pid) == sorted([proc.pid, *kids])
    report = await stop_group(proc.pid, leader=proc, grace_s=0.3, kill_wait_s=10)
    assert report.signals == ["SIGTERM", "SIGKILL"]
    assert report.survivors == [] and report.clean
    assert group_members(proc.pid) == []
    assert_all_gone([proc.pid, *kids])
    assert proc.returncode == -signal.SIGKILL     # the leader was reaped by the stop


async def test_a_group_that_obeys_sigterm_gets_no_sigkill():
    proc, kids = start_group(2)
    report = await stop_group(proc.pid, leader=proc, grace_s=30)
    assert report.signals == ["SIGTERM"] and report.clean
    assert proc.returncode == -signal.SIGTERM
    assert group_members(proc.pid) == []
    assert_all_gone(kids)


async def test_children_that_outlive_their_leader_are_still_stopped_through_the_group():
    proc, kids = start_group(2, leader_exits=True)
    proc.wait(timeout=60)                             # the leader is gone, its children live on in its group
    assert proc.returncode == 0
    assert group_members(proc.pid) == sorted(kids)
    report = await stop_group(proc.pid, leader=proc)
    assert report.clean and report.signals == ["SIGTERM"]
    assert group_members(proc.pid) == []
    assert_all_gone(kids)


async def test_an_asyncio_process_leader_is_stopped_and_its_exit_status_delivered():
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", LEADER, "2", "1", "0",
                                                stdout=asyncio.subprocess.PIPE, start_new_session=True)
    kids = [int(p) for p in (await asyncio.wait_for(proc.stdout.readline(), 60)).split()]
    assert len(group_members(proc.pid)) == 3
    report = await stop_group(proc.pid, leader=proc, grace_s=0.3)
    assert report.clean and report.signals == ["SIGTERM", "SIGKILL"]
    assert proc.returncode == -signal.SIGKILL
    assert group_members(proc.pid) == []
    assert_all_gone([proc.pid, *kids])


async def test_first_signal_none_goes_straight_to_sigkill():
    proc, kids = start_group(1)
    report = await stop_group(proc.pid, leader=proc, first_signal=None)
    assert report.signals == ["SIGKILL"] and report.clean
    assert_all_gone([proc.pid, *kids])


async def test_stopping_an_empty_group_sends_nothing():
    proc, kids = start_group(0, leader_exits=True)
    proc.wait(timeout=60)
    report = await stop_group(proc.pid, leader=proc)
    assert report.signals == [] and report.clean


async def test_a_pid_set_in_separate_sessions_is_stopped_and_a_term_ignorer_is_killed():
    obeying = [subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(2)]
    ignorer, _ = start_group(0, ignore_term=True)     # its own session, SIGTERM ignored, waits
    pids = [p.pid for p in obeying] + [ignorer.pid]
    assert all(alive(p) for p in pids)
    report = await stop_pids(pids, grace_s=0.3)
    assert report.signals == ["SIGTERM", "SIGKILL"] and report.clean
    assert_all_gone(pids)
    for p in (*obeying, ignorer):
        p.wait(timeout=10)                            # reap our direct children (stop_pids had no leader)
    assert sorted(p.returncode for p in obeying) == [-signal.SIGTERM] * 2
    assert ignorer.returncode == -signal.SIGKILL


def test_the_blocking_variants_stop_a_group_and_a_pid_set():
    proc, kids = start_group(2, ignore_term=True)
    report = stop_group_sync(proc.pid, leader=proc, grace_s=0.3)
    assert report.clean and report.signals == ["SIGTERM", "SIGKILL"] and proc.returncode == -signal.SIGKILL
    assert group_members(proc.pid) == []
    assert_all_gone(kids)

    loose = subprocess.Popen(["sleep", "300"])
    assert stop_pids_sync([loose.pid], leader=loose).clean
    assert loose.returncode == -signal.SIGTERM


def test_kill_group_now_and_a_gone_pid_set():
    proc, kids = start_group(2)
    kill_group_now(proc.pid)
    proc.wait(timeout=10)
    # SIGKILL was sent to every member; the stop confirms they are gone without sending anything new
    report = stop_pids_sync([proc.pid, *kids], leader=proc)
    assert report.clean
    assert_all_gone(kids)


def test_descendants_follow_the_process_tree():
    proc, kids = start_group(2)
    try:
        table = snapshot()
        assert set(kids) <= set(descendants(proc.pid, table))
        assert set([proc.pid, *kids]) <= set(descendants(os.getpid(), table))
        assert {table[k].sid for k in kids} == {proc.pid}     # start_new_session: the leader's session
        assert cmdline(kids[0]) == "sleep 300"
    finally:
        assert stop_group_sync(proc.pid, leader=proc).clean


UNPRIVILEGED_STOP = textwrap.dedent("""
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("processes", sys.argv[1])
    processes = importlib.util.module_from_spec(spec)
    sys.modules["processes"] = processes
    spec.loader.exec_module(processes)
    report = processes.stop_pids_sync([int(sys.argv[2])], grace_s=0.05, kill_wait_s=0.05)
    print(json.dumps({"survivors": report.survivors, "signals": report.signals}))
""")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("python3", path="/usr/bin"),
                    reason="needs root to run the stop as another user, and /usr/bin/python3")
def test_a_process_that_cannot_be_signalled_is_reported_as_a_survivor():
    target = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        module = Path(__file__).resolve().parent.parent / "agentgym" / "processes.py"
        # nobody may not signal root's process: every signal fails, and the stop must say so rather than hang
        out = subprocess.run(["/usr/bin/python3", "-I", "-c", UNPRIVILEGED_STOP, str(module), str(target.pid)],
                             user=65534, group=65534, extra_groups=[], capture_output=True, text=True, timeout=60,
                             cwd="/")
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result == {"survivors": [target.pid], "signals": ["SIGTERM", "SIGKILL"]}
        assert alive(target.pid)
    finally:
        assert stop_pids_sync([target.pid], leader=target).clean


# --- the test suite's process guard (tests/conftest.py), run on a small inner test session --------------------

GUARDED_TESTS = textwrap.dedent('''
    import subprocess, sys
    import pytest
    from agentgym.processes import stop_group_sync

    DAEMON = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    if os.fork() == 0:\\n        time.sleep(300)\\n"

    @pytest.fixture(scope="module")
    def tidy_server():
        proc = subprocess.Popen(["sleep", "301"], start_new_session=True)
        yield proc
        stop_group_sync(proc.pid, leader=proc)

    @pytest.fixture(scope="module")
    def sloppy_server():
        yield subprocess.Popen(["sleep", "302"], start_new_session=True)

    class LazyServer:
        proc = None

        def use(self):
            if self.proc is None:      # started by the first test that needs it, not by the fixture
                self.proc = subprocess.Popen(["sleep", "305"], start_new_session=True)
            return self.proc

    @pytest.fixture(scope="module")
    def lazy_server():
        server = LazyServer()
        yield server
        if server.proc is not None:
            stop_group_sync(server.proc.pid, leader=server.proc)

    def test_starts_the_lazy_server(lazy_server):
        assert lazy_server.use().poll() is None

    def test_reuses_the_lazy_server(lazy_server):
        assert lazy_server.use().poll() is None

    def test_leaks_a_child():
        subprocess.Popen(["sleep", "303"], start_new_session=True)

    def test_leaks_a_daemon_outside_its_process_tree():
        subprocess.run([sys.executable, "-c", DAEMON], check=True)   # fork, setsid, fork: reparented away

    def test_stops_what_it_starts():
        proc = subprocess.Popen(["sleep", "304"])
        proc.kill()
        proc.wait()

    def test_uses_the_tidy_server(tidy_server):
        assert tidy_server.poll() is None

    def test_uses_the_sloppy_server(sloppy_server):
        assert sloppy_server.poll() is None

    def test_runs_after_the_servers():
        pass
''')


def test_the_process_guard_names_each_leaking_test_and_module_fixture(pytester, monkeypatch):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_guarded=GUARDED_TESTS)
    monkeypatch.setenv("AGENTGYM_PROCESS_GUARD_GRACE_S", "0.5")
    monkeypatch.delenv("AGENTGYM_PROCESS_GUARD", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rE")
    result.assert_outcomes(passed=8, errors=3)
    out = result.stdout.str()
    assert "ERROR at teardown of test_leaks_a_child" in out and "sleep 303" in out
    assert "ERROR at teardown of test_leaks_a_daemon_outside_its_process_tree" in out
    # a module fixture is finalized in the teardown of the module's last test: the error lands there, naming it
    assert "ERROR at teardown of test_runs_after_the_servers" in out
    assert "module fixture 'sloppy_server'" in out and "sleep 302" in out
    for fine in ("test_stops_what_it_starts", "test_uses_the_tidy_server", "test_uses_the_sloppy_server"):
        assert f"ERROR at teardown of {fine}" not in out
    # the lazily started server belongs to its module fixture, which stopped it: no error anywhere
    assert "sleep 301" not in out and "sleep 304" not in out and "sleep 305" not in out
