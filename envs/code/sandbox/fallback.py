"""The weaker backend for machines without bubblewrap: privilege drop, rlimits and, when allowed, ``unshare``.

It runs in the sandbox's own cgroup and uid where the host allows (``confinement.py``), applies the same rlimits
and wall-clock kill, ends what a cell left running through that cgroup or uid, and (when unprivileged user
namespaces work) runs Python under ``unshare --user --map-root-user --net --pid --fork --mount-proc`` for no
network and a private process table. It does NOT hide the host's file system: the process can read whatever
the unprivileged uid can read (world-readable files) and write where it may write (``/tmp``, not size-capped
beyond ``RLIMIT_FSIZE`` per file and, with a cgroup, the memory cap on what tmpfs pages it holds). Its work dir is
a private 0700 directory on the host, removed on kill. Chosen only when bubblewrap is missing, and loudly.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from typing import Any

from agentgym.envs.code.sandbox.base import SandboxLimits
from agentgym.envs.code.sandbox.confinement import Confinement
from agentgym.envs.code.sandbox.process import PYTHON, ProcessSandbox

UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount",
           "--mount-proc")


@functools.lru_cache(maxsize=4)
def unshare_works(uid: int, gid: int) -> bool:
    """Whether ``unshare`` can give the unprivileged uid its own network and pid namespaces here."""
    if shutil.which("unshare") is None:
        return False
    kwargs = {"user": uid, "group": gid, "extra_groups": []} if os.geteuid() == 0 else {}
    try:
        done = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=10, cwd="/", **kwargs)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class FallbackLauncher:
    """unshare (when it works) + privilege drop + rlimits; a host temp dir as the work dir."""

    name = "fallback"

    def __init__(self, limits: SandboxLimits):
        self.limits = limits
        self.confinement = Confinement(limits)
        self.own_pid_namespace = unshare_works(limits.uid, limits.gid)
        self.workdir = tempfile.mkdtemp(prefix="agentgym-sandbox-")
        if self.confinement.uid is not None:
            os.chown(self.workdir, self.confinement.uid, self.confinement.gid)
        os.chmod(self.workdir, 0o700)

    def argv(self, python_args: list[str]) -> list[str]:
        prefix = list(UNSHARE) if self.own_pid_namespace else []
        return [*prefix, PYTHON, *python_args]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"preexec_fn": self.confinement.preexec(), "cwd": self.workdir}

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.confinement.release()


class FallbackSandbox(ProcessSandbox):
    """The weaker sandbox (``backend == "fallback"``); see the module docstring for what it does not protect."""

    backend = "fallback"

    @classmethod
    def make_launcher(cls, limits: SandboxLimits) -> FallbackLauncher:
        return FallbackLauncher(limits)
