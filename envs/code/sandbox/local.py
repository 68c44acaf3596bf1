"""The default backend: an unprivileged Python process under bubblewrap, with rlimits and a wall-clock kill.

Recipe (verified on the reference machine): drop root to an unprivileged uid before bubblewrap starts (as root,
RLIMIT_NPROC is not enforced), then ``bwrap --unshare-all`` (own user, pid, network, ipc, uts and cgroup
namespaces: no network at all), the system's ``/usr`` read-only, nothing of the host's home, ``/etc``, ``/root``
or the repository mounted, fresh ``/proc`` and ``/dev``, size-capped private tmpfs for ``/tmp`` and the work dir
``/home/user``, and ``/dev/shm`` (the only writable places; the root and ``/dev`` are remounted read-only),
``--die-with-parent`` and ``--new-session``. Nothing is written on the host. Each sandbox runs in its own cgroup
and/or as its own uid (``confinement.py``), so its process count and total memory are its own.
"""

from __future__ import annotations

import shutil
from typing import Any

from agentgym.envs.code.sandbox.base import SandboxLimits
from agentgym.envs.code.sandbox.confinement import Confinement
from agentgym.envs.code.sandbox.process import PYTHON, ProcessSandbox

BWRAP = "/usr/bin/bwrap"
WORKDIR = "/home/user"


def bwrap_path() -> str | None:
    """The bubblewrap binary, or None when it is not installed."""
    return BWRAP if shutil.which(BWRAP) else None


class BwrapLauncher:
    """Builds the bubblewrap command line for one sandbox."""

    name = "bwrap"
    own_pid_namespace = True

    def __init__(self, limits: SandboxLimits, bwrap: str = BWRAP):
        self.limits = limits
        self.bwrap = bwrap
        self.confinement = Confinement(limits)

    def argv(self, python_args: list[str]) -> list[str]:
        size, shm = str(self.limits.tmpfs_bytes), str(self.limits.shm_bytes)
        # inside, the code sees `limits.uid` whatever pool uid it runs as on the host
        ids = ["--uid", str(self.limits.uid), "--gid", str(self.limits.gid)] if self.confinement.uid is not None else []
        # every writable mount is a size-capped tmpfs: /dev itself (bwrap's small tmpfs of device nodes) and the
        # root are remounted read-only after /dev/shm, /tmp and the work dir are mounted on them
        return [self.bwrap, "--unshare-all", "--unshare-user", *ids, "--disable-userns", "--die-with-parent",
                "--new-session", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--dev", "/dev", "--proc", "/proc",
                "--size", shm, "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp",
                "--size", size, "--tmpfs", WORKDIR,
                "--remount-ro", "/dev", "--remount-ro", "/", "--hostname", "sandbox", "--chdir", WORKDIR,
                PYTHON, *python_args]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"preexec_fn": self.confinement.preexec(), "cwd": "/"}

    def cleanup(self) -> None:
        """Release the cgroup and uid; the sandbox's files lived on its own tmpfs (gone with it)."""
        self.confinement.release()


class LocalSandbox(ProcessSandbox):
    """The bubblewrap sandbox (``backend == "bwrap"``)."""

    backend = "bwrap"

    @classmethod
    def make_launcher(cls, limits: SandboxLimits) -> BwrapLauncher:
        return BwrapLauncher(limits)
