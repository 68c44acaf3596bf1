"""Shared fixtures: an isolated cache directory, the README's example env importable as a plug-in, and a guard
that fails a test (or a module/session fixture) which leaves a process of its own running after it ended."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentgym import processes

pytest_plugins = ["pytester"]   # tests/test_processes.py runs the process guard on an inner test session

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


# --- the process guard ---------------------------------------------------------------------------------------
#
# Who started a process is read from an environment variable set while a test (or a module/session fixture's
# setup) runs: children inherit it, and so do their children, also after a double fork or a setsid that takes
# them out of our process tree. Processes whose environment was replaced are attributed by ancestry instead
# (descendants of this pytest process, or sharing a new process group/session with an attributed one).
# A test's leftovers are checked when its function-scoped fixtures are finished; a module/session fixture's
# when that fixture is finalized. A test that asks for a module/session fixture hands its leftovers to it
# (an env whose browser starts on first use belongs to the fixture, not to the first test that used it).
# Leftovers get a grace period (polled, with a deadline), are then reported with the test or fixture's name
# and their command lines, and stopped so they cannot disturb the next test.
#
# AGENTGYM_PROCESS_GUARD: "fail" (default) errors the test at teardown, "warn" only reports, "off" disables.
# AGENTGYM_PROCESS_GUARD_GRACE_S: how long leftovers may take to exit on their own (default 10 s).

OWNER_VAR = "AGENTGYM_TEST_OWNER"
RUN = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"      # tells our markers apart from another pytest run's
MODE = os.environ.get("AGENTGYM_PROCESS_GUARD", "fail")
GRACE_S = float(os.environ.get("AGENTGYM_PROCESS_GUARD_GRACE_S", "10"))
# Interpreter-lifetime helpers that Python starts on first use and keeps until this process exits: not a leak.
LIFETIME_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def _owner_of(pid: int) -> str | None:
    """The owner marker in the environment `pid` started with (None: none, or unreadable)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{OWNER_VAR}=".encode()
    for item in env.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode("utf-8", "replace")
    return None


def _key(pid: int, info: processes.ProcInfo) -> tuple[int, int]:
    return pid, info.start


@dataclass
class _Scope:
    """A test or a module/session fixture: its marker, the processes that existed when it began, what it owns."""

    name: str
    marker: str
    kind: str                     # "test", or the fixture's scope
    before: set[tuple[int, int]]
    owned: set[tuple[int, int]] = field(default_factory=set)    # higher-scope fixtures: processes started in setup
    adopted_from: list[str] = field(default_factory=list)       # tests whose leftovers this fixture took over


_WARNINGS: list[str] = []             # reports in "warn" mode
_LIVE_FIXTURES: dict[str, _Scope] = {}   # module/session fixtures set up and not finalized yet, by marker


def pytest_terminal_summary(terminalreporter) -> None:
    """In "warn" mode, list every leftover process the guard found."""
    if _WARNINGS:
        terminalreporter.section("process guard: processes left running")
        for message in _WARNINGS:
            terminalreporter.write_line(message)


def _begin(name: str, kind: str) -> _Scope:
    marker = f"{RUN}:{uuid.uuid4().hex[:12]}"
    return _Scope(name, marker, kind, {_key(p, i) for p, i in processes.snapshot().items()})


def _leftovers(scope: _Scope, *, tree: set[int] | None = None) -> list[int]:
    """Live processes `scope` started that are still running (see the comment above for the rules)."""
    table = processes.snapshot()
    me = os.getpid()
    new = {p: i for p, i in table.items() if _key(p, i) not in scope.before and i.state not in "ZX" and p != me}
    # processes of live module/session fixtures are theirs, even unmarked ones (checked when those end)
    new = {p: i for p, i in new.items()
           if not any(_key(p, i) in f.owned for f in _LIVE_FIXTURES.values() if f is not scope)}
    owners = {p: _owner_of(p) for p in new}     # only new processes: reading an environment can be slow
    ours = {p for p in new if owners[p] == scope.marker or (tree is not None and p in tree)}
    for pid in new:
        if owners[pid] is not None:
            continue
        # unmarked (its environment was replaced): ours if its nearest marked or older ancestor is ours or pytest
        ancestor = table[pid].ppid
        while ancestor in new and owners[ancestor] is None:
            ancestor = table[ancestor].ppid
        if ancestor == me or (ancestor in new and owners[ancestor] == scope.marker):
            ours.add(pid)
    groups = {table[p].pgrp for p in ours} | {table[p].sid for p in ours}
    groups -= {os.getpgrp(), os.getsid(0)}
    ours |= {p for p, i in new.items() if (i.pgrp in groups or i.sid in groups) and owners[p] in (None, scope.marker)}
    return sorted(p for p in ours if not any(h in processes.cmdline(p) for h in LIFETIME_HELPERS))


def _check(scope: _Scope, what: str, *, tree: set[int] | None = None, heir: _Scope | None = None) -> None:
    """Wait (polling, up to GRACE_S) for `scope`'s leftovers to exit; report, stop and fail on the rest.

    A test that uses a live module/session fixture (`heir`) may have started processes for it (a browser or a
    server launched lazily by the first test that needs it): those are handed to that fixture and checked when
    it is finalized, rather than stopped under its feet."""
    if MODE == "off":
        return
    # the grace period lets leftovers go on their own (a closed pipe, a parent that died a moment ago)
    left = processes.wait_gone(_leftovers(scope, tree=tree), GRACE_S)
    if not left:
        return
    if heir is not None:
        heir.owned |= {_key(p, i) for p in left if (i := processes.proc_info(p)) is not None}
        heir.adopted_from.append(scope.name)
        return
    lines = [f"  pid {p} (pgid {i.pgrp}, sid {i.sid}): {processes.cmdline(p)[:300].replace(chr(10), ' ') or '?'}"
             for p in left if (i := processes.proc_info(p)) is not None]
    report = processes.stop_pids_sync(left, grace_s=5.0)     # so they cannot disturb the next test
    if scope.adopted_from:
        what += f" (with processes started by {', '.join(scope.adopted_from)})"
    message = (f"{what} left {len(left)} process(es) running {GRACE_S:g} s after it ended "
               f"(stopped now: {'clean' if report.clean else f'survivors {report.survivors}'}):\n" + "\n".join(lines))
    if MODE == "warn":
        _WARNINGS.append(message)       # shown in the terminal summary (stderr is captured here)
    else:
        pytest.fail(message, pytrace=False)


SCOPE_ORDER = {"class": 0, "module": 1, "package": 2, "session": 3}


def _heir(request: pytest.FixtureRequest) -> _Scope | None:
    """The live module/session fixture this test asks for (directly or through its fixtures; autouse ones do not
    count) that is finalized first; None when it asks for none."""
    info = getattr(request.node, "_fixtureinfo", None)
    if info is None:
        return None
    names, todo, used = set(), list(info.argnames), []
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.add(name)
        for fixturedef in info.name2fixturedefs.get(name, ()):
            todo.extend(fixturedef.argnames)
            if (scope := getattr(fixturedef, "_agentgym_guard", None)) is not None:
                used.append(scope)
    return min(used, key=lambda s: SCOPE_ORDER.get(s.kind, 9), default=None)


@pytest.fixture(autouse=True)
def process_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test at teardown when a process it started outlives it and its function-scoped fixtures."""
    if MODE == "off":
        yield
        return
    scope = _begin(request.node.nodeid, "test")
    previous = os.environ.get(OWNER_VAR)
    os.environ[OWNER_VAR] = scope.marker
    try:
        yield
    finally:
        _restore(previous)
    # this runs after every other function-scoped fixture of the test is finished: an autouse fixture of the
    # root conftest is set up first, so it is torn down last
    _check(scope, f"test {request.node.nodeid}", heir=_heir(request))


def _restore(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(OWNER_VAR, None)
    else:
        os.environ[OWNER_VAR] = previous


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    """Module/session fixtures: mark and record the processes their setup starts (checked at finalization)."""
    if MODE == "off" or fixturedef.scope == "function":
        return (yield)
    scope = _begin(f"{fixturedef.scope} fixture {fixturedef.argname!r} (set up for {request.node.nodeid})",
                   fixturedef.scope)
    previous = os.environ.get(OWNER_VAR)
    os.environ[OWNER_VAR] = scope.marker
    try:
        return (yield)
    finally:
        _restore(previous)
        table = processes.snapshot()
        mine = set(processes.descendants(os.getpid(), table))      # never another program's new processes
        scope.owned = {_key(p, i) for p, i in table.items() if _key(p, i) not in scope.before and i.state not in "ZX"
                       and (p in mine or _owner_of(p) == scope.marker)}
        _LIVE_FIXTURES[scope.marker] = scope
        fixturedef._agentgym_guard = scope      # type: ignore[attr-defined]


def pytest_fixture_post_finalizer(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> None:
    """After a module/session fixture's teardown: none of its processes (or their children) may be left."""
    scope = getattr(fixturedef, "_agentgym_guard", None)
    if scope is None:
        return
    fixturedef._agentgym_guard = None          # type: ignore[attr-defined]
    _LIVE_FIXTURES.pop(scope.marker, None)
    tree = {p for p, i in processes.snapshot().items() if _key(p, i) in scope.owned}
    _check(scope, scope.name, tree=tree)
