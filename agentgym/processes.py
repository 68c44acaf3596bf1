"""Stopping what we started: one routine for every supervised process group or process set.

Servers (built-in, vLLM), SQL workers, sandboxes, browsers and local clusters all stop the same way:
signal the group, wait until no live member is left (a deadline), SIGKILL whatever remains, wait again,
and reap the leader. ``stop_*`` returns only when nothing is left, or says exactly which pids survived,
so a caller (and a test) never has to sleep and hope. Works with ``subprocess.Popen`` and asyncio's
``Process`` leaders; members are found through ``/proc`` (zombies count as gone: they hold no resources
but a pid, and their parent, not us, must reap them). ``stop_group`` / ``stop_pids`` are for async code,
``stop_group_sync`` / ``stop_pids_sync`` for code that cannot await (atexit, ``ray.shutdown`` paths).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = ["ProcInfo", "StopReport", "alive", "cmdline", "descendants", "group_members", "kill_group_now",
           "proc_info", "proc_table", "snapshot", "stop_group", "stop_group_sync", "stop_pids", "stop_pids_sync",
           "wait_gone"]

POLL_S = 0.005         # first poll interval; it doubles up to MAX_POLL_S (a stop usually ends within ms)
MAX_POLL_S = 0.1


@dataclass
class StopReport:
    """What a stop did: the signals sent, how long it took, and the pids still alive afterwards (empty = clean)."""

    survivors: list[int] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def clean(self) -> bool:
        """True when nothing survived the stop."""
        return not self.survivors


# --- /proc ---------------------------------------------------------------------------------------------


class ProcInfo(NamedTuple):
    """One process as /proc/PID/stat shows it; ``start`` (clock ticks after boot) tells a reused pid apart."""

    state: str
    ppid: int
    pgrp: int
    sid: int
    start: int


def proc_info(pid: int) -> ProcInfo | None:
    """The /proc/PID/stat fields we use, or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()   # the command name may hold spaces and parentheses
    try:
        return ProcInfo(fields[0], int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process, or None when it is gone."""
    info = proc_info(pid)
    return None if info is None else (info.state, info.ppid, info.pgrp)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def snapshot() -> dict[int, ProcInfo]:
    """Every visible process: pid -> ProcInfo (zombies included; check ``state``)."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            info = proc_info(int(entry.name))
            if info is not None:
                table[int(entry.name)] = info
    return table


def proc_table() -> dict[int, tuple[str, int, int]]:
    """Every visible process: pid -> (state, ppid, pgrp)."""
    return {pid: (info.state, info.ppid, info.pgrp) for pid, info in snapshot().items()}


def cmdline(pid: int) -> str:
    """The command line of ``pid`` joined by spaces ("" when it is gone or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


def descendants(pid: int, table: Mapping[int, ProcInfo | int] | None = None) -> list[int]:
    """All descendants of ``pid`` (children, grandchildren ...) in ``table`` (pid -> ProcInfo or ppid;
    default: ``snapshot()``)."""
    table = snapshot() if table is None else table
    kids: dict[int, list[int]] = {}
    for p, row in table.items():
        kids.setdefault(row.ppid if isinstance(row, ProcInfo) else row, []).append(p)
    out: list[int] = []
    stack = list(kids.get(pid, []))
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return sorted(out)


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes whose process group is ``pgid``."""
    return sorted(pid for pid, (state, _, pgrp) in proc_table().items() if pgrp == pgid and state not in ("Z", "X"))


# --- stopping ------------------------------------------------------------------------------------------

Leader = subprocess.Popen | asyncio.subprocess.Process | None


def _reap(leader: Leader) -> bool:
    """Collect the leader's exit status if it has one; True when it has exited."""
    if leader is None:
        return True
    if isinstance(leader, subprocess.Popen):
        return leader.poll() is not None
    if leader.returncode is not None:
        return True
    # asyncio's child watcher reaps in the background; a direct waitpid would race it, so only look.
    return not alive(leader.pid)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# The stop sequence, written once: it yields (deadline) whenever it must wait for the processes to go, and is
# sent back the pids still alive when they went or the deadline passed. An async and a blocking driver run it.
_Plan = Generator[float, list[int], None]


def _plan(members: Callable[[], list[int]], send: Callable[[int], None], leader: Leader, grace_s: float,
          kill_wait_s: float, first_signal: int | None, report: StopReport) -> _Plan:
    left = members()
    if first_signal is not None and (left or not _reap(leader)):
        send(first_signal)
        report.signals.append(signal.Signals(first_signal).name)
        left = yield time.monotonic() + grace_s
    if left or not _reap(leader):
        send(signal.SIGKILL)
        report.signals.append("SIGKILL")
        left = yield time.monotonic() + kill_wait_s
    report.survivors = left


def _left(members: Callable[[], list[int]], leader: Leader) -> list[int] | None:
    """Who is still alive, or None when every member is gone and the leader has exited."""
    left = members()
    return None if not left and _reap(leader) else left


async def _run_async(plan: _Plan, members: Callable[[], list[int]], leader: Leader) -> None:
    deadline = next(plan, None)
    while deadline is not None:
        delay = POLL_S
        while (left := _left(members, leader)) is not None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_POLL_S)
        deadline = _resume(plan, left)


def _run_sync(plan: _Plan, members: Callable[[], list[int]], leader: Leader) -> None:
    deadline = next(plan, None)
    while deadline is not None:
        delay = POLL_S
        while (left := _left(members, leader)) is not None and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(2 * delay, MAX_POLL_S)
        deadline = _resume(plan, left)


def _resume(plan: _Plan, left: list[int] | None) -> float | None:
    """Tell the plan who is left; its next deadline, or None when it is done."""
    try:
        return plan.send(left or [])
    except StopIteration:
        return None


async def _stop_async(members: Callable[[], list[int]], send: Callable[[int], None], leader: Leader,
                      grace_s: float, kill_wait_s: float, first_signal: int | None) -> StopReport:
    t0, report = time.monotonic(), StopReport()
    await _run_async(_plan(members, send, leader, grace_s, kill_wait_s, first_signal, report), members, leader)
    if isinstance(leader, asyncio.subprocess.Process) and leader.returncode is None:
        # let asyncio's watcher deliver the exit status, so the transport closes without a warning
        with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
            await asyncio.wait_for(leader.wait(), timeout=max(0.1, kill_wait_s))
    report.elapsed_s = time.monotonic() - t0
    return report


def _stop_sync(members: Callable[[], list[int]], send: Callable[[int], None], leader: Leader,
               grace_s: float, kill_wait_s: float, first_signal: int | None) -> StopReport:
    t0, report = time.monotonic(), StopReport()
    _run_sync(_plan(members, send, leader, grace_s, kill_wait_s, first_signal, report), members, leader)
    report.elapsed_s = time.monotonic() - t0
    return report


def _group_ops(pgid: int) -> tuple[Callable[[], list[int]], Callable[[int], None]]:
    return (lambda: group_members(pgid)), (lambda sig: _signal_group(pgid, sig))


def _pid_ops(pids: Iterable[int]) -> tuple[Callable[[], list[int]], Callable[[int], None]]:
    # a pid is only ours while it keeps the start time we saw: a recycled pid must never be signalled
    starts = {pid: info.start for pid in set(pids) if (info := proc_info(pid)) is not None}

    def members() -> list[int]:
        return sorted(p for p, start in starts.items()
                      if (info := proc_info(p)) is not None and info.start == start and info.state not in "ZX")

    return members, (lambda sig: _signal_pids(members(), sig))


async def stop_group(pgid: int, *, leader: Leader = None, grace_s: float = 5.0, kill_wait_s: float = 10.0,
                     first_signal: int | None = signal.SIGTERM) -> StopReport:
    """Stop process group ``pgid``: ``first_signal`` (None: straight to SIGKILL), wait up to ``grace_s`` for
    every member to go, SIGKILL the group, wait up to ``kill_wait_s``; the leader is reaped on the way."""
    return await _stop_async(*_group_ops(pgid), leader, grace_s, kill_wait_s, first_signal)


async def stop_pids(pids: Iterable[int], *, leader: Leader = None, grace_s: float = 5.0, kill_wait_s: float = 10.0,
                    first_signal: int | None = signal.SIGTERM) -> StopReport:
    """Like ``stop_group`` for a set of pids that share no group of their own (e.g. a browser's process tree)."""
    return await _stop_async(*_pid_ops(pids), leader, grace_s, kill_wait_s, first_signal)


def stop_group_sync(pgid: int, *, leader: subprocess.Popen | None = None, grace_s: float = 5.0,
                    kill_wait_s: float = 10.0, first_signal: int | None = signal.SIGTERM) -> StopReport:
    """``stop_group`` for code that cannot await (it blocks the calling thread while it waits)."""
    return _stop_sync(*_group_ops(pgid), leader, grace_s, kill_wait_s, first_signal)


def stop_pids_sync(pids: Iterable[int], *, leader: subprocess.Popen | None = None, grace_s: float = 5.0,
                   kill_wait_s: float = 10.0, first_signal: int | None = signal.SIGTERM) -> StopReport:
    """``stop_pids`` for code that cannot await (it blocks the calling thread while it waits)."""
    return _stop_sync(*_pid_ops(pids), leader, grace_s, kill_wait_s, first_signal)


def wait_gone(pids: Iterable[int], timeout_s: float) -> list[int]:
    """Wait (polling, no signal sent) until none of `pids` is alive or `timeout_s` passed; returns who is left."""
    members, _ = _pid_ops(pids)
    deadline, delay = time.monotonic() + timeout_s, POLL_S
    while (left := members()) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(2 * delay, MAX_POLL_S)
    return left


def kill_group_now(pgid: int) -> None:
    """SIGKILL a whole group without waiting (for ``__del__``, atexit and other places that cannot await)."""
    _signal_group(pgid, signal.SIGKILL)
