"""Control groups for sandboxes: one cgroup per sandbox caps its process count and its total memory, and kills it whole.

Two kernel interfaces, one small API. ``find_cgroup_root()`` looks once for a place where this process may create
child cgroups with the pids and memory controllers: cgroup v2 (``pids.max``, ``memory.max``, ``memory.swap.max``,
``cgroup.kill``) at the deepest level at or above our own cgroup where both controllers can be enabled (so a
delegated subtree of an unprivileged user works, and a root process stays inside the limits it runs under), else
cgroup v1 (the ``pids`` and ``memory`` hierarchies, ``freezer`` when present, each under our own cgroup there).
``CgroupRoot.create(name, ...)`` makes one sandbox's cgroup; a process enters it from inside (``join_paths``
written by the child between fork and exec, so nothing it runs is ever outside); ``kill_all`` and ``remove``
end it. Memory charged to a cgroup includes tmpfs pages its processes wrote, so ``/dev/shm`` and ``/tmp`` count.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

V1_REQUIRED = ("pids", "memory")
V1_OPTIONAL = ("freezer", "cpu")  # freezer: a kill loop no fork can outrun; cpu: a fair CPU share per sandbox
PREFIX = "agentgym-sandbox"
TRUE = "/bin/true"


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def own_cgroups(text: str | None = None) -> dict[str, str]:
    """This process's cgroup per hierarchy, from /proc/self/cgroup: ``{"": v2 path, "pids": v1 path, ...}``."""
    out: dict[str, str] = {}
    for line in (text if text is not None else _read(Path("/proc/self/cgroup"))).splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                out[controller] = parts[2]
    return out


def cgroup_mounts(text: str | None = None) -> dict[str, Path]:
    """Mount points of cgroup hierarchies, from /proc/self/mountinfo: ``{"": v2 mount, "pids": v1 mount, ...}``."""
    out: dict[str, Path] = {}
    for line in (text if text is not None else _read(Path("/proc/self/mountinfo"))).splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mount, fstype, options = fields[3], Path(fields[4]), tail[0], tail[2].split(",")
        if root != "/":
            continue  # a bind mount of a sub-hierarchy: paths from /proc/self/cgroup would not resolve under it
        if fstype == "cgroup2":
            out.setdefault("", mount)
        elif fstype == "cgroup":
            for controller in options:
                if controller in V1_REQUIRED + V1_OPTIONAL:
                    out.setdefault(controller, mount)
    return out


class Cgroup:
    """One sandbox's cgroup (one directory per hierarchy); create it with ``CgroupRoot.create``."""

    version: int = 0

    def __init__(self, dirs: list[Path]):
        self.dirs = dirs

    @property
    def join_paths(self) -> list[str]:
        """The files a process writes ``0`` into to enter this cgroup (in the child, before exec)."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def members(self) -> list[int]:
        """Pids of the processes in this cgroup (empty once all have exited)."""
        pids: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(FileNotFoundError):
                pids.update(int(p) for p in _read(d / "cgroup.procs").split())
        return sorted(pids)

    def memory_peak(self) -> int | None:
        """The most memory this cgroup has held at once (bytes), where the kernel reports it."""
        raise NotImplementedError

    def kill_all(self) -> None:
        """SIGKILL every member (one pass; it returns without waiting: call it until ``members()`` is empty)."""
        raise NotImplementedError

    def remove(self) -> bool:
        """Remove the cgroup's directories (only possible once it is empty); True when all are gone."""
        gone = True
        for d in self.dirs:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                gone = False
        return gone


class CgroupV2(Cgroup):
    version = 2

    def memory_peak(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(_read(self.dirs[0] / "memory.peak"))
        return None

    def kill_all(self) -> None:
        try:
            _write(self.dirs[0] / "cgroup.kill", "1")  # atomic: no fork can escape it (Linux >= 5.14)
        except OSError:  # an older kernel: signal the members one by one
            _kill_members(self, None)


class CgroupV1(Cgroup):
    version = 1

    def __init__(self, dirs: list[Path], memory: Path, freezer: Path | None):
        super().__init__(dirs)
        self.memory = memory
        self.freezer = freezer

    def memory_peak(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(_read(self.memory / "memory.max_usage_in_bytes"))
        return None

    def kill_all(self) -> None:
        _kill_members(self, self.freezer)


def _kill_members(cgroup: Cgroup, freezer: Path | None) -> None:
    """SIGKILL the members, frozen first where a v1 freezer exists, so a fork loop cannot outrun the listing."""
    if freezer is not None:
        with contextlib.suppress(OSError):
            _write(freezer / "freezer.state", "FROZEN")
    for pid in cgroup.members():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if freezer is not None:
        with contextlib.suppress(OSError):
            _write(freezer / "freezer.state", "THAWED")  # frozen tasks cannot act on SIGKILL until thawed


@dataclass
class CgroupRoot:
    """Where sandbox cgroups are created (each directly under it, removed when its sandbox ends): a v2 directory,
    or one directory per needed v1 hierarchy."""

    version: int
    bases: dict[str, Path]  # v2: {"": dir}; v1: {"pids": dir, "memory": dir, optionally "freezer", "cpu": dir}
    swap_limit: bool = False  # v1 only: memory.memsw.limit_in_bytes exists (swap accounting is on)

    @property
    def description(self) -> str:
        return f"cgroup v{self.version} under " + ", ".join(str(p) for p in self.bases.values())

    def create(self, name: str, *, pids_max: int, memory_max: int) -> Cgroup:
        """Make the cgroup ``name`` with its process and memory caps (swap included where the kernel accounts it)."""
        dirs: list[Path] = []
        try:
            if self.version == 2:
                d = self.bases[""] / name
                d.mkdir()
                dirs.append(d)
                _write(d / "pids.max", str(pids_max))
                _write(d / "memory.max", str(memory_max))
                with contextlib.suppress(FileNotFoundError):  # no swap configured: nothing to cap
                    _write(d / "memory.swap.max", "0")
                return CgroupV2(dirs)
            for base in dict.fromkeys(self.bases.values()):  # co-mounted controllers share one hierarchy
                d = base / name
                d.mkdir()
                dirs.append(d)
            by = {d.parent: d for d in dirs}
            _write(by[self.bases["pids"]] / "pids.max", str(pids_max))
            memory = by[self.bases["memory"]]
            _write(memory / "memory.limit_in_bytes", str(memory_max))
            if self.swap_limit:
                _write(memory / "memory.memsw.limit_in_bytes", str(memory_max))
            freezer = by.get(self.bases["freezer"]) if "freezer" in self.bases else None
            return CgroupV1(dirs, memory, freezer)
        except OSError:
            for d in dirs:
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise

    def sweep_stale(self) -> int:
        """Remove empty sandbox cgroups left by processes that died without cleaning up; returns how many."""
        removed = 0
        for base in self.bases.values():
            with contextlib.suppress(OSError):
                for entry in base.iterdir():
                    parts = entry.name.split("-")
                    if not entry.name.startswith(PREFIX + "-") or len(parts) < 4 or not parts[2].isdigit():
                        continue
                    if Path(f"/proc/{parts[2]}").exists():
                        continue  # its owner still runs
                    with contextlib.suppress(OSError):
                        entry.rmdir()
                        removed += 1
        return removed


def _enable_v2_controllers(level: Path) -> bool:
    """Make pids and memory (and cpu, when it can) available to the children of ``level`` (True when they are)."""
    try:
        enabled = set(_read(level / "cgroup.subtree_control").split())
        if not {"pids", "memory"} <= enabled:
            if not {"pids", "memory"} <= set(_read(level / "cgroup.controllers").split()):
                return False
            _write(level / "cgroup.subtree_control", "+pids +memory")
    except OSError:  # EBUSY (processes live at this level), EACCES (not delegated to us), EROFS
        return False
    if "cpu" not in enabled:  # a fair CPU share per sandbox, where the cpu controller can be had
        with contextlib.suppress(OSError):
            _write(level / "cgroup.subtree_control", "+cpu")
    return True


def join(paths: list[str]) -> None:
    """Move the calling process into a cgroup (run in a child between fork and exec)."""
    for path in paths:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def _probe(root: CgroupRoot) -> bool:
    """Create and cap a throw-away cgroup, start a process in it, remove it: proof that all of it works here
    (a v2 move also needs write access where the source and destination meet, which creating does not test)."""
    name = f"{PREFIX}-probe-{os.getpid()}-{time.monotonic_ns()}"
    try:
        cgroup = root.create(name, pids_max=8, memory_max=64 << 20)
    except OSError:
        return False
    paths = cgroup.join_paths
    try:
        done = subprocess.run([TRUE if os.path.exists(TRUE) else sys.executable, "-c", ""],
                              preexec_fn=lambda: join(paths), capture_output=True, timeout=10)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        for _ in range(100):  # the probe process has exited; its cgroup empties as the kernel lets go of it
            if cgroup.remove():
                break
            time.sleep(0.01)


def find_v2_root(mounts: dict[str, Path], own: dict[str, str]) -> CgroupRoot | None:
    """The deepest level at or above our cgroup whose children can have pids and memory (no processes live
    at such a level, except at the top, so sandbox cgroups go straight into it; nothing else is created)."""
    if "" not in mounts or "" not in own:
        return None
    mount = mounts[""]
    level = mount / own[""].lstrip("/")
    while True:
        if _enable_v2_controllers(level):
            root = CgroupRoot(2, {"": level})
            if _probe(root):
                return root
        if level == mount:
            return None
        level = level.parent


def find_v1_root(mounts: dict[str, Path], own: dict[str, str]) -> CgroupRoot | None:
    """Our own cgroups in the v1 pids and memory hierarchies (and freezer, when mounted): sandbox cgroups are
    created straight under them, so they stay inside whatever limits this process runs under."""
    if not all(c in mounts and c in own for c in V1_REQUIRED):
        return None
    bases = {c: mounts[c] / own[c].lstrip("/") for c in V1_REQUIRED + V1_OPTIONAL if c in mounts and c in own}
    bases = {c: d for c, d in bases.items() if d.is_dir()}
    if not all(c in bases for c in V1_REQUIRED):
        return None
    swap = (bases["memory"] / "memory.memsw.limit_in_bytes").exists()
    for controller in V1_OPTIONAL:  # an optional hierarchy we may not write to is left out, not fatal
        if controller in bases and not _probe(CgroupRoot(1, {**{c: bases[c] for c in V1_REQUIRED},
                                                             controller: bases[controller]}, swap)):
            del bases[controller]
    root = CgroupRoot(1, bases, swap_limit=swap)
    return root if _probe(root) else None


def find_cgroup_root() -> CgroupRoot | None:
    """A writable cgroup root with the pids and memory controllers (v2 preferred), or None when there is none."""
    try:
        mounts, own = cgroup_mounts(), own_cgroups()
    except OSError:
        return None
    for finder in (find_v2_root, find_v1_root):
        try:
            root = finder(mounts, own)
        except OSError as exc:  # an unexpected layout must not break sandboxes: it only means "not usable"
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.EBUSY):
                raise
            root = None
        if root is not None:
            root.sweep_stale()
            return root
    return None
