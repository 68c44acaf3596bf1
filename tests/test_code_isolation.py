"""Per-sandbox isolation of the code sandbox: each sandbox has its own process cap, total memory cap, size-capped
writable mounts and no process outliving its cell, so a hostile episode cannot fail an honest one beside it."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import warnings
from pathlib import Path

import pytest

import agentgym
from agentgym.envs.code.hostile import fork_fill_spin
from agentgym.envs.code.sandbox import SandboxLimits, confinement, create_sandbox, local
from agentgym.envs.code.sandbox.base import SandboxError
from agentgym.envs.code.sandbox.cgroups import cgroup_mounts, own_cgroups
from agentgym.envs.code.sandbox.process import uid_processes

pytestmark = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")
ROOT = os.geteuid() == 0
HAS_CGROUP = confinement.isolation().cgroups is not None
needs_cgroup = pytest.mark.skipif(not HAS_CGROUP, reason="no writable cgroup with pids and memory here")
needs_root = pytest.mark.skipif(not ROOT, reason="the uid pool needs root")

SMALL = SandboxLimits(processes=24, total_memory_bytes=384 << 20, shm_bytes=32 << 20, tmpfs_bytes=32 << 20)


@pytest.fixture
def isolation_mode(monkeypatch):
    """Switch the process-wide isolation choice for one test (and restore the detected one afterwards)."""

    def use(mode: str) -> confinement.Isolation:
        monkeypatch.setenv(confinement.ISOLATION_ENV, mode)
        confinement.isolation.cache_clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", confinement.SandboxIsolationWarning)
            return confinement.isolation()

    yield use
    confinement.isolation.cache_clear()


def sandbox_pids(sandbox) -> list[int]:
    """The host pids of a sandbox: its cgroup's members, else the processes of its own uid."""
    c = sandbox._process.launcher.confinement
    members = c.members()
    return members if members is not None else uid_processes(c.uid)


def processes_held(sandbox) -> int:
    """How many pids a sandbox holds: its cgroup's pids.current (zombies included), else its uid's live processes."""
    c = sandbox._process.launcher.confinement
    for d in c.cgroup.dirs if c.cgroup is not None else []:
        if (d / "pids.current").exists():
            return int((d / "pids.current").read_text())
    return len(uid_processes(c.uid))


async def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def test_cgroup_membership_and_mounts_are_read_for_v1_and_v2_layouts():
    own = own_cgroups("12:pids:/user.slice\n4:memory:/job/7\n3:cpu,cpuacct:/\n0::/user.slice/session-3.scope\n")
    assert own == {"pids": "/user.slice", "memory": "/job/7", "cpu": "/", "cpuacct": "/",
                   "": "/user.slice/session-3.scope"}
    mounts = cgroup_mounts(
        "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "40 31 0:37 /sub /mnt/elsewhere rw - cgroup cgroup rw,freezer\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    # a bind mount of a sub-hierarchy (root /sub) is skipped: our paths would not resolve under it
    assert mounts == {"memory": Path("/sys/fs/cgroup/memory"), "pids": Path("/sys/fs/cgroup/pids"),
                      "": Path("/sys/fs/cgroup/unified")}


@needs_cgroup
async def test_each_sandbox_gets_its_own_capped_cgroup_and_uid_and_gives_both_back():
    async with await create_sandbox("bwrap", limits=SMALL) as a, await create_sandbox("bwrap", limits=SMALL) as b:
        ca, cb = a._process.launcher.confinement, b._process.launcher.confinement
        assert a.isolation.startswith("cgroup") and set(ca.cgroup.dirs).isdisjoint(cb.cgroup.dirs)
        assert set(sandbox_pids(a)).isdisjoint(sandbox_pids(b)) and len(sandbox_pids(a)) == 3
        values = {f.name: f.read_text().strip() for d in ca.cgroup.dirs for f in d.iterdir()
                  if f.name in ("pids.max", "memory.max", "memory.limit_in_bytes")}
        assert values["pids.max"] == "24"
        assert str(384 << 20) in (values.get("memory.max"), values.get("memory.limit_in_bytes"))
        if ROOT:
            assert ca.uid != cb.uid and ca.lease is not None
            assert (await a.run_code("import os\nos.getuid()")).text == str(SMALL.uid)  # the same uid inside
        dirs, uid = list(ca.cgroup.dirs), ca.uid
    assert not any(d.exists() for d in dirs)
    assert ca.cgroup is None and ca.lease is None
    assert uid is None or confinement.is_leased(uid) or uid_processes(uid) == []  # unless leased again since


@pytest.mark.parametrize("mode", ["auto", pytest.param("uid", marks=needs_root)])
async def test_a_sandbox_at_its_process_limit_does_not_stop_another_from_starting_and_forking(mode, isolation_mode):
    isolation_mode(mode)
    async with await create_sandbox("bwrap", limits=SMALL) as hog:
        cell = asyncio.create_task(hog.run_code(
            "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n"
            "        n += 1\nexcept OSError:\n    pass\nprint('forked', n)\ntime.sleep(5)", timeout=20))
        assert await wait_until(lambda: len(sandbox_pids(hog)) >= SMALL.processes - 1)
        async with await create_sandbox("bwrap", limits=SMALL) as other:
            out = await other.run_code("import os\npids = []\nfor _ in range(10):\n    pid = os.fork()\n"
                                       "    if pid == 0:\n        os._exit(0)\n    pids.append(pid)\n"
                                       "[os.waitpid(p, 0)[1] for p in pids]")
            assert out.error is None and out.text == str([0] * 10)
        forked = await cell
        assert forked.error is None and "forked" in forked.logs.stdout[0]
        assert int(forked.logs.stdout[0].split()[1]) < SMALL.processes  # stopped by its own cap
        assert await wait_until(lambda: len(sandbox_pids(hog)) == 3)  # the sleepers died with their cell


async def test_dev_shm_and_every_writable_mount_are_size_capped():
    async with await create_sandbox("bwrap", limits=SMALL) as sandbox:
        out = await sandbox.run_code(
            "import os\nsizes = {}\nfor d in ('/dev/shm', '/tmp', '/home/user'):\n    n = 0\n    try:\n"
            "        for i in range(1000):\n            with open(os.path.join(d, 'f%d' % i), 'wb') as f:\n"
            "                f.write(b'x' * (4 << 20))\n            n += 4 << 20\n    except OSError as e:\n"
            "        sizes[d] = (n, e.errno)\nsizes")
        sizes = eval(out.text)
        assert sizes == {"/dev/shm": (SMALL.shm_bytes, errno.ENOSPC), "/tmp": (SMALL.tmpfs_bytes, errno.ENOSPC),
                         "/home/user": (SMALL.tmpfs_bytes, errno.ENOSPC)}
        for path in ("/dev/evil", "/evil", "/usr/evil", "/proc/evil"):
            denied = await sandbox.run_code(f"open({path!r}, 'w')")
            assert denied.error is not None and denied.error.name in ("OSError", "PermissionError",
                                                                        "FileNotFoundError"), path
        assert (await sandbox.run_code("open('/dev/null', 'w').write('x')")).text == "1"


@needs_cgroup
async def test_memory_is_capped_for_the_whole_sandbox_not_per_process():
    async with await create_sandbox("bwrap", limits=SMALL) as sandbox:
        cgroup = sandbox._process.launcher.confinement.cgroup
        # 12 processes of 64 MiB each: every one is far under the 1 GiB per-process limit, together 2x the cap
        out = await sandbox.run_code(
            "import os, time\npids = []\nfor _ in range(12):\n    pid = os.fork()\n    if pid == 0:\n"
            "        block = b'x' * (64 << 20)\n        time.sleep(30)\n        os._exit(0)\n    pids.append(pid)\n"
            "time.sleep(2)\nsum(1 for p in pids if os.waitpid(p, os.WNOHANG) == (0, 0))", timeout=20)
        peak = cgroup.memory_peak()
        assert peak is not None and peak <= SMALL.total_memory_bytes
        if out.error is None:  # the interpreter survived the OOM kills: some children were killed
            assert int(out.text) < 12
        survivor = await create_sandbox("bwrap", limits=SMALL) if not sandbox.is_running() else sandbox
        assert (await survivor.run_code("6 * 7")).text == "42"
        if survivor is not sandbox:
            await survivor.kill()


async def test_processes_a_cell_leaves_behind_stop_spinning_when_it_returns():
    async with await create_sandbox("bwrap", limits=SMALL) as sandbox:
        plumbing = set(sandbox_pids(sandbox))
        out = await sandbox.run_code(
            "import os, subprocess\nsubprocess.Popen(['/usr/bin/python3', '-c', 'while True: pass'], "
            "start_new_session=True)\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n"
            "        if os.fork() == 0:\n            while True:\n                pass\n        os._exit(0)\n'left'")
        assert out.text == "'left'"
        assert set(sandbox_pids(sandbox)) == plumbing  # checked right after the cell: nothing else is running
        assert (await sandbox.run_code("1 + 1")).text == "2"


@needs_root
def test_uid_leases_are_exclusive_until_released():
    base = 0x7F000000  # a range no default sandbox uses, so concurrent test runs cannot interfere
    first, second = confinement.lease_uid(base, 2), confinement.lease_uid(base, 2)
    assert {first.uid, second.uid} == {base, base + 1}
    with pytest.raises(SandboxError, match="all 2 sandbox uids"):
        confinement.lease_uid(base, 2)
    fd = os.open(confinement.LEASE_DIR / str(first.uid), os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # another process (or open file) cannot take a held uid
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.release()
        third = confinement.lease_uid(base, 2)
        assert third.uid == first.uid
    finally:
        os.close(fd)
    second.release()
    third.release()


async def test_without_cgroup_or_uid_pool_sandboxes_still_run_and_a_warning_says_so_once(monkeypatch):
    monkeypatch.setenv(confinement.ISOLATION_ENV, "none")
    confinement.isolation.cache_clear()
    try:
        with pytest.warns(confinement.SandboxIsolationWarning, match="not isolated from each other"):
            assert confinement.isolation().kind == "none"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert confinement.isolation().kind == "none"  # decided once: no second warning
            async with await create_sandbox("bwrap", limits=SMALL) as sandbox:
                assert sandbox.isolation == "none" and (await sandbox.run_code("2 ** 10")).text == "1024"
    finally:
        confinement.isolation.cache_clear()


async def test_hostile_episode_beside_the_reference_solution_never_costs_it_its_reward():
    """The acceptance test: hostile and honest episodes side by side, three times; the honest one always scores."""
    limits = SandboxLimits(total_memory_bytes=512 << 20)  # the default process cap, like the honest sandboxes
    leased: list[int] = []
    for round_ in range(3):
        hostile = agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap", limits=limits, cell_timeout_s=15.0)
        honest = agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap")
        try:
            await hostile.areset(seed=round_)
            await hostile.astep("<execute>x = 1</execute>")
            sandbox = hostile._sandbox
            leased.append(sandbox._process.launcher.confinement.uid)
            attack = asyncio.create_task(hostile.astep(f"<execute>{fork_fill_spin(8)}</execute>"))
            # the honest episode starts once the hostile one holds all its processes (and keeps them for 8 s)
            assert await wait_until(lambda: processes_held(sandbox) >= limits.processes - 1, 20)
            _, info = await honest.areset(seed=round_)
            _, reward, terminated, _, info = await honest.astep(await honest.oracle_action())
            assert terminated and reward == 1.0 and "infra_error" not in info
            obs, _, _, _, info = await attack
            assert "infra_error" not in info
            cgroup = sandbox._process.launcher.confinement.cgroup
            if cgroup is not None:
                assert cgroup.memory_peak() <= limits.total_memory_bytes
            if sandbox.is_running():  # the spinners died with their cell
                assert await wait_until(lambda: len(sandbox_pids(sandbox)) == 3)
        finally:
            await hostile.aclose()
            await honest.aclose()
    if ROOT:
        assert all(uid_processes(uid) == [] for uid in leased if not confinement.is_leased(uid))
