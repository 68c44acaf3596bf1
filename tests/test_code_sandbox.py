"""The code sandbox: the E2B-shaped API, the hostile-code suite (each attack contained, the host unchanged,
no process of a sandbox's uid left), and the loud fallback when bubblewrap is missing."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import warnings
from pathlib import Path

import pytest

import agentgym
from agentgym.envs.code.sandbox import SandboxFallbackWarning, SandboxLimits, create_sandbox, resolve_backend
from agentgym.envs.code.sandbox import confinement, local
from agentgym.envs.code.sandbox.fallback import FallbackSandbox
from agentgym.envs.code.sandbox.process import uid_processes

pytestmark = pytest.mark.skipif(not Path(local.BWRAP).exists(), reason="bubblewrap is not installed")
SANDBOX_UID = SandboxLimits().uid  # the uid code sees inside the sandbox
LEASED: dict[int, confinement.UidLease] = {}  # host uids the sandboxes of the running test ran as


@pytest.fixture(autouse=True)
def record_sandbox_uids(monkeypatch):
    """Record every pool uid leased during a test, so the test can check that none of them has a process left."""
    real = confinement.lease_uid

    def recording(base: int, size: int) -> confinement.UidLease:
        lease = real(base, size)
        LEASED[lease.uid] = lease
        return lease

    LEASED.clear()
    monkeypatch.setattr(confinement, "lease_uid", recording)


def ours(uid: int) -> bool:
    """Whether `uid`'s processes are this test's: we hold it, or nobody does (another program may have leased
    it again since we gave it back; its processes are then not ours)."""
    lease = LEASED.get(uid)
    return lease is None or lease.held or not confinement.is_leased(uid)


def sandbox_uid_processes() -> list[int]:
    """Live processes of this test's sandbox uids."""
    uids = set(LEASED) or ({SANDBOX_UID} if os.geteuid() == 0 else set())
    return sorted(pid for uid in uids if ours(uid) for pid in uid_processes(uid))


async def no_sandbox_processes(within_s: float = 5.0) -> list[int]:
    """Processes of this test's sandbox uids still alive after a grace period for teardown (empty when clean)."""
    for _ in range(int(within_s / 0.05)):
        left = sandbox_uid_processes()
        if not left:
            return []
        await asyncio.sleep(0.05)
    return sandbox_uid_processes()


async def test_run_code_keeps_state_and_reports_results_logs_errors_like_e2b():
    async with await create_sandbox("bwrap") as sandbox:
        assert sandbox.backend == "bwrap" and sandbox.is_running()
        first = await sandbox.run_code("x = 41\nprint('hello')")
        assert first.logs.stdout == ["hello\n"] and first.error is None and first.results == []
        second = await sandbox.run_code("x + 1")
        assert second.text == "42" and second.execution_count == 2
        failed = await sandbox.run_code("def f():\n    return 1 / 0\nf()")
        assert failed.error.name == "ZeroDivisionError" and "line 2, in f" in failed.error.traceback
        assert "return 1 / 0" in failed.error.traceback
        who = await sandbox.run_code("import os\n(os.getuid(), os.getcwd())")
        assert who.text == f"({SANDBOX_UID}, '/home/user')"
        await sandbox.files.write("data/in.txt", "payload")
        read = await sandbox.run_code("open('data/in.txt').read()")
        assert read.text == "'payload'"
        await sandbox.run_code("open('out.bin', 'wb').write(bytes(range(5)))")
        assert await sandbox.files.read("out.bin", format="bytes") == bytes(range(5))
        with pytest.raises(OSError, match="FileNotFoundError"):
            await sandbox.files.read("missing.txt")
    assert not sandbox.is_running()


async def test_soft_timeout_interrupts_in_place_and_hard_kill_ends_the_sandbox():
    async with await create_sandbox("bwrap") as sandbox:
        await sandbox.run_code("state = 'kept'")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        spin = await sandbox.run_code("while True:\n    pass", timeout=0.5)
        assert spin.error.name == "TimeoutError" and loop.time() - t0 < 3.0
        assert (await sandbox.run_code("state")).text == "'kept'"
        t0 = loop.time()
        stubborn = await sandbox.run_code("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                          "time.sleep(1000)", timeout=0.5)
        assert stubborn.error.name == "SandboxKilled" and loop.time() - t0 < 5.0
        assert not sandbox.is_running()
    assert await no_sandbox_processes() == []


class LoopbackServer:
    """A TCP server on the host's loopback that records connections (the sandbox must never reach it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


HOME_FILE = Path.home() / ".agentgym-sandbox-canary"
HOSTILE = {
    "network_internet": ("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)", "Network is unreachable"),
    "network_dns": ("import socket\nsocket.getaddrinfo('example.com', 80)", "gaierror"),
    "network_host_loopback": ("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)",
                              "Connection refused"),
    "read_etc_shadow": ("open('/etc/shadow').read()", "FileNotFoundError"),
    "read_home": (f"open({str(HOME_FILE)!r}).read()", "FileNotFoundError"),
    "list_root_home": ("import os\nos.listdir('/root')", "FileNotFoundError"),
    "read_repository": (f"open({str(Path(__file__).resolve())!r}).read()", "FileNotFoundError"),
    "write_system": ("open('/usr/agentgym-evil', 'w').write('x')", "Read-only file system"),
    "write_outside_workdir": ("import os\nos.makedirs('/opt/evil')", "Read-only file system"),
    "fork_bomb": ("import os\nwhile True:\n    os.fork()", "BlockingIOError"),
    "memory_bomb": ("blocks = []\nwhile True:\n    blocks.append(bytearray(256 * 1024 * 1024))", "MemoryError"),
    "huge_allocation": ("x = bytearray(8 * 1024 ** 3)", "MemoryError"),
    "cpu_spin": ("while True:\n    pass", "TimeoutError"),
    "endless_output": ("while True:\n    print('x' * 1000)", "output truncated"),
    "sleep_forever": ("import time\ntime.sleep(10 ** 6)", "TimeoutError"),
    "ignore_interrupt_and_sleep": ("import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                   "time.sleep(10 ** 6)", "was killed"),
    "kill_the_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(1, signal.SIGKILL)\n"
                        "print('still here', os.getppid())", "still here"),
    "proc_escape": ("import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
                    "open('/proc/1/root/root/.bashrc').read()", "FileNotFoundError"),
    "proc_sysctl_write": ("open('/proc/sys/kernel/hostname', 'w').write('pwned')", "Error"),
    "big_file": ("open('big', 'wb').write(b'x' * (64 * 1024 * 1024))", "Error"),
    "background_processes": ("import subprocess, os\n"
                             "subprocess.Popen(['/usr/bin/python3', '-c', 'import time\\nwhile True: time.sleep(1)'], "
                             "start_new_session=True)\n"
                             "if os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(10 ** 6)\n"
                             "print('spawned')", "spawned"),
}


@pytest.fixture(scope="module")
def loopback():
    server = LoopbackServer()
    HOME_FILE.write_text("secret")
    yield server
    server.close()
    HOME_FILE.unlink(missing_ok=True)


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_code_is_contained_with_a_clear_observation(name, loopback):
    code, fragment = HOSTILE[name]
    hostname = socket.gethostname()
    slow = name in ("memory_bomb", "huge_allocation", "fork_bomb")  # page faults and forks are slow on a busy host
    env = agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap", cell_timeout_s=10.0 if slow else 1.5)
    await env.areset(seed=0)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        obs, reward, term, trunc, info = await env.astep(f"<execute>{code.format(port=loopback.port)}</execute>")
        text = obs["messages"][0]["content"]
        assert fragment in text, text
        assert loop.time() - t0 < 20.0
        assert not term and not trunc and "infra_error" not in info and info["sandbox"] == "bwrap"
        # the host is unchanged
        assert loopback.connections == 0
        assert not Path("/usr/agentgym-evil").exists() and not Path("/opt/evil").exists()
        assert HOME_FILE.read_text() == "secret" and socket.gethostname() == hostname
        if name == "proc_escape":
            assert int(text.split("<output>")[1].split("\n")[1]) <= 4  # only the sandbox's own processes are visible
        # the env still works afterwards (in a fresh interpreter when the old one had to be killed)
        obs, *_ = await env.astep("<execute>print(6 * 7)</execute>")
        assert "42" in obs["messages"][0]["content"]
    finally:
        await env.aclose()
    assert await no_sandbox_processes() == [], f"{name} left processes behind"


async def test_background_processes_end_with_their_cell_and_nothing_outlives_the_sandbox(loopback):
    env = agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap")
    await env.areset(seed=1)
    await env.astep("<execute>x = 1</execute>")
    plumbing = len(sandbox_uid_processes())  # bwrap, its pid-1 and the interpreter
    obs, *_ = await env.astep(f"<execute>{HOSTILE['background_processes'][0]}</execute>")
    assert "spawned" in obs["messages"][0]["content"]
    assert len(sandbox_uid_processes()) == plumbing  # both background processes were killed as the cell returned
    obs, *_ = await env.astep("<execute>print(x + 1)</execute>")  # the interpreter itself persists
    assert "2" in obs["messages"][0]["content"]
    await env.aclose()
    assert await no_sandbox_processes() == []


async def test_missing_bwrap_falls_back_loudly_and_reports_it(monkeypatch, caplog):
    monkeypatch.setattr(local, "BWRAP", "/nonexistent/bwrap")
    with pytest.warns(SandboxFallbackWarning, match="WEAKER"):
        assert resolve_backend("auto") == "fallback"
    assert "bubblewrap (bwrap) was not found" in caplog.text
    with pytest.raises(RuntimeError, match="bwrap backend was requested"):
        resolve_backend("bwrap")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = agentgym.make("agentgym/code-v0", split="test")
    assert any(issubclass(w.category, SandboxFallbackWarning) for w in caught)
    _, info = await env.areset(seed=0)
    assert info["sandbox"] == "fallback"
    obs, _, _, _, info = await env.astep("<execute>import os\nprint(os.getcwd().startswith('/tmp/agentgym-sandbox-'), "
                                         "sum(1 for _ in range(10)))</execute>")
    assert "True 10" in obs["messages"][0]["content"] and info["sandbox"] == "fallback"
    obs, reward, term, *_ = await env.astep(await env.oracle_action())
    assert term and reward == 1.0
    workdir = env._sandbox.files._sandbox._process.launcher.workdir if env._sandbox else None
    await env.aclose()
    assert workdir is None or not Path(workdir).exists()


async def test_fallback_backend_still_drops_privileges_limits_and_cuts_the_network():
    async with await FallbackSandbox.create() as sandbox:
        assert sandbox.backend == "fallback"
        host_uid = sandbox._process.launcher.confinement.uid
        who = await sandbox.run_code("import os, resource\n(os.getuid(), resource.getrlimit(resource.RLIMIT_NPROC)[0])")
        uid, nproc = eval(who.text)
        assert uid in (0, host_uid)  # root of its own user namespace (unshare), or the unprivileged host uid
        if sandbox._process.launcher.confinement.lease is not None:  # its own uid: RLIMIT_NPROC is per sandbox
            assert nproc == SandboxLimits().processes and host_uid != SANDBOX_UID
        workdir = sandbox._process.launcher.workdir
        assert Path(workdir).is_dir()
        net = await sandbox.run_code("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
        if sandbox._process.launcher.own_pid_namespace:
            assert net.error is not None and "unreachable" in net.error.value
        hog = await sandbox.run_code("x = bytearray(8 * 1024 ** 3)")
        assert hog.error.name == "MemoryError"
    assert not Path(workdir).exists()
    assert await no_sandbox_processes() == []
