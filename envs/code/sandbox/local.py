"""The default backend: an unprivileged Python process under bubblewrap, with rlimits and a wall-clock kill.

Recipe (verified on the reference machine): drop root to an unprivileged uid before bubblewrap starts (as root,
RLIMIT_NPROC is not enforced), then ``bwrap --unshare-all`` (own user, pid, network, ipc, uts and cgroup
namespaces: no network at all), the system's ``/usr`` read-only, nothing of the host's home, ``/etc``, ``/root``
or the repository mounted, fresh ``/proc`` and ``/dev``, size-capped private tmpfs for ``/tmp`` and the work dir
``/home/user`` (the only writable places; the root is remounted read-only), ``--die-with-parent`` and ``--new-session``. Nothing is written on the host.
"""

from __future__ import annotations

import shutil
from typing import Any

from agentgym.envs.code.sandbox.base import SandboxLimits
from agentgym.envs.code.sandbox.process import PYTHON, ProcessSandbox, privilege_drop, rlimit_setter

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

    def argv(self, python_args: list[str]) -> list[str]:
        size = str(self.limits.tmpfs_bytes)
        return [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                "--symlink", "usr/bin", "/bin", "--dev", "/dev", "--proc", "/proc",
                "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", WORKDIR,
                "--remount-ro", "/", "--hostname", "sandbox", "--chdir", WORKDIR, PYTHON, *python_args]

    def popen_kwargs(self) -> dict[str, Any]:
        return {**privilege_drop(self.limits), "preexec_fn": rlimit_setter(self.limits), "cwd": "/"}

    def cleanup(self) -> None:
        """Nothing to clean: the sandbox's files lived on its own tmpfs."""


class LocalSandbox(ProcessSandbox):
    """The bubblewrap sandbox (``backend == "bwrap"``)."""

    backend = "bwrap"

    @classmethod
    def make_launcher(cls, limits: SandboxLimits) -> BwrapLauncher:
        return BwrapLauncher(limits)
