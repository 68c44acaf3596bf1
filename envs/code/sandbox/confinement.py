"""What keeps concurrent sandboxes apart on one host: a cgroup and a uid of their own, entered before any code runs.

``isolation()`` decides once per process (``AGENTGYM_SANDBOX_ISOLATION`` = auto | cgroup | uid | none overrides):

* ``cgroup``: each sandbox gets a cgroup (see ``cgroups.py``) capping its processes (``pids.max``) and its total
  memory, tmpfs included (``memory.max`` / ``memory.limit_in_bytes``, swap too where accounted), and killed whole;
  when we are root each sandbox also runs as a uid of its own from the pool below.
* ``uid``: no writable cgroup, but root: each sandbox runs as a uid leased from a host-wide pool, so the kernel's
  per-uid ``RLIMIT_NPROC`` becomes a per-sandbox process cap. Memory is then capped per process only (the
  aggregate bound is ``processes x memory_bytes`` plus the tmpfs sizes).
* ``none``: neither (unprivileged, no delegated cgroup): today's per-process rlimits under the caller's own uid,
  shared by all of its sandboxes; a warning says so once.

A uid lease is an exclusive ``flock`` on one file per uid under a root-only directory: held for the sandbox's
life, released on kill or by the kernel when the owning process dies, so concurrent processes never share a uid.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import logging
import os
import random
import resource
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentgym.envs.code.sandbox.base import SandboxError, SandboxLimits
from agentgym.envs.code.sandbox.cgroups import PREFIX, Cgroup, CgroupRoot, find_cgroup_root, join

logger = logging.getLogger("agentgym.envs.code.sandbox")
ISOLATION_ENV = "AGENTGYM_SANDBOX_ISOLATION"
MODES = ("auto", "cgroup", "uid", "none")
LEASE_DIR = (Path("/run") if Path("/run").is_dir() else Path(tempfile.gettempdir())) / "agentgym-sandbox-uids"
NONE_WARNING = ("agentgym's code sandboxes are not isolated from each other: no writable cgroup (pids and memory "
                "controllers) and no uid pool (not root, or AGENTGYM_SANDBOX_ISOLATION=none), so concurrent "
                "sandboxes share one uid's process limit and memory is capped per process only: one sandbox can "
                "starve the others. Run as root, or delegate a cgroup v2 subtree to this user.")


class SandboxIsolationWarning(RuntimeWarning):
    """Sandboxes are not isolated from each other (no cgroup, no uid pool): only per-process limits apply."""


@dataclass(frozen=True)
class Isolation:
    """The per-sandbox isolation available in this process: a cgroup root, a uid pool, both or neither."""

    cgroups: CgroupRoot | None
    uid_pool: bool

    @property
    def kind(self) -> str:
        """'cgroup+uid', 'cgroup', 'uid' or 'none' (reported by ``Sandbox.isolation`` and the bench)."""
        return "+".join(k for k, on in (("cgroup", self.cgroups is not None), ("uid", self.uid_pool)) if on) or "none"


def detect_isolation(mode: str = "auto") -> Isolation:
    """Find what this process may use (without caching; ``isolation()`` caches it)."""
    if mode not in MODES:
        raise ValueError(f"{ISOLATION_ENV}={mode!r}: expected one of {MODES}")
    root = os.geteuid() == 0
    cgroups = find_cgroup_root() if mode in ("auto", "cgroup") else None
    if mode == "cgroup" and cgroups is None:
        raise SandboxError(f"{ISOLATION_ENV}=cgroup but no writable cgroup with the pids and memory controllers "
                           "was found")
    if mode == "uid" and not root:
        raise SandboxError(f"{ISOLATION_ENV}=uid needs root (the pool's uids are assigned with setuid)")
    return Isolation(cgroups, uid_pool=root and mode != "none")


@functools.cache
def isolation() -> Isolation:
    """The isolation sandboxes of this process use, decided once; warns once when it is 'none'."""
    found = detect_isolation(os.environ.get(ISOLATION_ENV, "auto"))
    if found.kind == "none":
        warnings.warn(NONE_WARNING, SandboxIsolationWarning, stacklevel=2)
        logger.warning(NONE_WARNING)
    else:
        logger.info("code sandboxes are isolated by %s%s", found.kind,
                    f" ({found.cgroups.description})" if found.cgroups else "")
    return found


class UidLease:
    """Exclusive use of one pool uid by this sandbox, until ``release()`` or this process's death."""

    def __init__(self, uid: int, fd: int):
        self.uid = uid
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """Whether this lease still holds its uid."""
        return self._fd is not None

    def release(self) -> None:
        """Give the uid back to the pool. Idempotent."""
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def lease_uid(base: int, size: int) -> UidLease:
    """Lock a free uid in ``[base, base + size)`` (tries from a random slot, so concurrent processes rarely collide)."""
    LEASE_DIR.mkdir(mode=0o700, exist_ok=True)
    start = random.randrange(size)
    for i in range(size):
        uid = base + (start + i) % size
        fd = os.open(LEASE_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidLease(uid, fd)
    raise SandboxError(f"all {size} sandbox uids from {base} are in use")


def is_leased(uid: int) -> bool:
    """Whether a live sandbox (of any process on this host) holds the pool uid `uid` now."""
    try:
        fd = os.open(LEASE_DIR / str(uid), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's own lock
    return False


_names = itertools.count()


class Confinement:
    """One sandbox's share of the host: its cgroup and uid (when available) and the rlimits every process gets.

    ``preexec`` runs in the child between fork and exec: it enters the cgroup while still privileged, applies the
    rlimits, then drops to the sandbox uid, so the launcher (bwrap) and all it starts are confined from the start.
    """

    def __init__(self, limits: SandboxLimits, found: Isolation | None = None):
        found = found if found is not None else isolation()
        self.limits = limits
        self.kind = found.kind
        self.root = os.geteuid() == 0
        self.lease: UidLease | None = None
        self.cgroup: Cgroup | None = None
        if found.uid_pool and limits.uid_pool_size > 0:
            self.lease = lease_uid(limits.uid_pool_base, limits.uid_pool_size)
        if found.cgroups is not None:
            try:
                self.cgroup = found.cgroups.create(f"{PREFIX}-{os.getpid()}-{next(_names)}",
                                                   pids_max=limits.processes, memory_max=limits.total_memory_bytes)
            except OSError as exc:
                self.release()
                raise SandboxError(f"could not create the sandbox's cgroup: {exc}") from exc

    @property
    def uid(self) -> int | None:
        """The host uid the sandbox runs as (None: the caller's own, when not root)."""
        if not self.root:
            return None
        return self.lease.uid if self.lease is not None else self.limits.uid

    @property
    def gid(self) -> int | None:
        if not self.root:
            return None
        return self.lease.uid if self.lease is not None else self.limits.gid

    def preexec(self) -> Callable[[], None]:
        """The function the child runs before exec (cgroup, rlimits, privilege drop, in that order)."""
        paths = self.cgroup.join_paths if self.cgroup is not None else []
        limits = self.limits
        # RLIMIT_NPROC counts every process of a uid: a per-sandbox cap only when the uid is the sandbox's own,
        # or the only cap there is (no cgroup, not root); with a cgroup and a shared uid pids.max does the job.
        nproc = limits.processes if (self.lease is not None or self.cgroup is None) else None
        uid, gid = self.uid, self.gid

        def apply() -> None:
            join(paths)
            for kind, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, limits.cpu_seconds),
                                (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NOFILE, limits.open_files),
                                (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_CORE, 0)):
                if value is not None:
                    resource.setrlimit(kind, (value, value))
            if uid is not None and gid is not None:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)

        return apply

    def kill_all(self) -> None:
        """SIGKILL everything in the sandbox's cgroup (no-op without one)."""
        if self.cgroup is not None:
            self.cgroup.kill_all()

    def members(self) -> list[int] | None:
        """Live pids in the sandbox's cgroup, or None when it has no cgroup."""
        return self.cgroup.members() if self.cgroup is not None else None

    def release(self) -> None:
        """Remove the cgroup (once empty) and give the uid back. Idempotent."""
        if self.cgroup is not None and self.cgroup.remove():
            self.cgroup = None
        if self.lease is not None and self.cgroup is None:  # a uid still in use by live processes stays leased
            self.lease.release()
            self.lease = None

