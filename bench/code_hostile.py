"""Hostile episodes beside honest ones: can an agent's code in one code-env episode cost another episode its reward?

200 episodes of agentgym/code-v0 (test split) through the RolloutEngine at concurrency 8. One job in four is
played by a hostile stand-in policy whose actions are attacks: a cell that fills /dev/shm, forks to its process
limit with every child holding 64 MiB and spinning in a new session, and stays alive 2 s; a cell that leaves
spinners running in the background and returns; then a submission that spins up forked CPU burners in the grader.
The other jobs are played by the oracle (the reference solution). Measured: honest episodes that failed or hit an
infrastructure error (target 0 of each), processes of any sandbox uid and sandbox cgroups left after the run
(target 0), the largest memory any sandbox's cgroup held against its cap, and the largest drop of the host's
MemAvailable (other programs on a shared machine move it too, so it is reported, not asserted). A first phase
runs the pair case alone, one hostile and one honest episode side by side, five times, where the host's drop
should stay under one sandbox's cap.

Run: python bench/code_hostile.py [--episodes 200] [--isolation auto|none]  -> bench/results/code_hostile[_<mode>].json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import agentgym  # noqa: E402
from agentgym import processes  # noqa: E402
from agentgym.envs.code.hostile import BURN_IN_GRADER, LEAVE_SPINNERS, fork_fill_spin  # noqa: E402
from agentgym.envs.code.sandbox import SandboxLimits, cgroups, confinement  # noqa: E402
from agentgym.envs.code.sandbox.process import uid_processes  # noqa: E402
from agentgym.policy import PolicyObservation  # noqa: E402
from agentgym.rollout import RolloutConfig, RolloutEngine, make_jobs  # noqa: E402

HOSTILE_EVERY = 4
class MixedPolicy:
    """The oracle on most jobs; on the jobs whose seed is listed, a stand-in for an agent whose actions are attacks."""

    name = "oracle+hostile"
    privileged = True

    def __init__(self, hostile_seeds: set[int]):
        self.hostile_seeds = hostile_seeds

    async def act(self, observation: PolicyObservation, tools: Sequence[Mapping[str, Any]]) -> Any:
        if observation.seed not in self.hostile_seeds:
            return observation.oracle_action
        script = (f"<execute>{fork_fill_spin(2)}</execute>", f"<execute>{LEAVE_SPINNERS}</execute>",
                  f"<submit>{BURN_IN_GRADER}</submit>")
        return {"role": "assistant", "content": script[min(observation.turn, len(script) - 1)]}


class Watch:
    """What the run leaves on the host: leased uids, cgroup memory peaks, and MemAvailable over time."""

    def __init__(self) -> None:
        self.uids: set[int] = set()
        self.peaks: list[int] = []
        self.min_available = self.baseline = available_kib()
        self.max_live = 0  # the most sandbox cgroups of this process alive at one time
        real_lease, real_remove = confinement.lease_uid, cgroups.Cgroup.remove
        watch = self

        def lease(base: int, size: int) -> confinement.UidLease:
            got = real_lease(base, size)
            watch.uids.add(got.uid)
            return got

        def remove(cgroup: cgroups.Cgroup) -> bool:
            peak = cgroup.memory_peak()
            if peak is not None:
                watch.peaks.append(peak)
            return real_remove(cgroup)

        confinement.lease_uid = lease  # measurement only: record what the sandboxes lease and hold
        cgroups.Cgroup.remove = remove  # type: ignore[method-assign]

    async def sample(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.min_available = min(self.min_available, available_kib())
            self.max_live = max(self.max_live, len(live_cgroups("memory")))
            await asyncio.sleep(0.05)


def available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def live_cgroups(controller: str | None = None) -> list[str]:
    """This process's sandbox cgroups that exist now (in one hierarchy, or in all)."""
    found = confinement.isolation().cgroups
    if found is None:
        return []
    mine = f"{cgroups.PREFIX}-{os.getpid()}-"
    bases = [b for c, b in found.bases.items() if controller is None or c in (controller, "")]
    return sorted(str(p) for base in bases for p in base.iterdir() if p.name.startswith(mine))


def describe(pid: int) -> dict[str, Any]:
    """State, real uid and command line of a process, for the report of what was left behind."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":" in line)
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return {"pid": pid, "state": "?", "uid": None, "cmd": ""}
    return {"pid": pid, "state": status["State"].split()[0], "uid": int(status["Uid"].split()[0]), "cmd": cmd}


def unleased_uid_processes(uids: set[int]) -> set[int]:
    """Live processes of those of `uids` that no sandbox holds now. Another program on this machine may have
    leased one of our uids again after we gave it back: its processes are its own, not our leftovers."""
    return {p for uid in uids if not confinement.is_leased(uid) for p in uid_processes(uid)}


async def leftovers(uids: set[int], grace_s: float = 2.0) -> list[dict[str, Any]]:
    """Processes of the sandboxes' uids, and our own descendants, still alive after a short grace period."""
    end = time.monotonic() + grace_s
    while True:
        pids = sorted(unleased_uid_processes(uids) | {p for p in processes.descendants(os.getpid()) if processes.alive(p)})
        if not pids or time.monotonic() > end:
            return [describe(p) for p in pids]
        await asyncio.sleep(0.1)


async def pair_rounds(rounds: int, watch: Watch, hostile: bool = True) -> dict[str, Any]:
    """One hostile episode and one oracle episode at a time, side by side: rewards and the host's memory drop
    (``hostile=False``: two oracle episodes, the control that shows how much the host moves without an attack)."""
    tasks = [t.id for t in agentgym.suite("agentgym/code-v0").tasks("test")]
    hostile_seed = 10_000
    policy = MixedPolicy({hostile_seed} if hostile else set())
    engine = RolloutEngine(lambda: agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap"), policy,
                           RolloutConfig(concurrency=2))
    drops, honest_rewards, honest_errors = [], [], 0
    for i in range(rounds):
        watch.min_available = watch.baseline = available_kib()
        stop = asyncio.Event()
        sampler = asyncio.create_task(watch.sample(stop))
        jobs = make_jobs([tasks[i % len(tasks)]], base_seed=i)
        jobs = [type(jobs[0])(tasks[i % len(tasks)], 1, hostile_seed), *jobs]
        records = await engine.run(jobs)
        stop.set()
        await sampler
        drops.append((watch.baseline - watch.min_available) / 1024)
        for r in records:
            if r.seed != hostile_seed or not hostile:
                honest_rewards.append(r.reward)
                honest_errors += len(r.infra_errors)
    return {"rounds": rounds, "honest_rewards": honest_rewards, "honest_infra_errors": honest_errors,
            "host_mem_available_drop_mib": [round(d, 1) for d in drops]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--isolation", default="auto", choices=confinement.MODES)
    args = parser.parse_args()
    os.environ[confinement.ISOLATION_ENV] = args.isolation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", confinement.SandboxIsolationWarning)
        kind = confinement.isolation().kind
    tasks = [t.id for t in agentgym.suite("agentgym/code-v0").tasks("test")]
    jobs = make_jobs(tasks, samples_per_task=-(-args.episodes // len(tasks)))[: args.episodes]
    hostile = {job.seed for i, job in enumerate(jobs) if i % HOSTILE_EVERY == HOSTILE_EVERY - 1}
    watch = Watch()
    control = await pair_rounds(5, watch, hostile=False)
    pair = await pair_rounds(5, watch)
    engine = RolloutEngine(lambda: agentgym.make("agentgym/code-v0", split="test", sandbox="bwrap"),
                           MixedPolicy(hostile), RolloutConfig(concurrency=args.concurrency))
    watch.min_available = watch.baseline = available_kib()
    stop = asyncio.Event()
    sampler = asyncio.create_task(watch.sample(stop))
    t0 = time.perf_counter()
    records = await engine.run(jobs)
    wall = time.perf_counter() - t0
    stop.set()
    await sampler
    left = await leftovers(watch.uids)
    honest = [r for r in records if r.seed not in hostile]
    bad = [r for r in honest if r.infra_errors or not r.success]
    cap = SandboxLimits().total_memory_bytes
    result = {
        "isolation": kind,
        "pair": {**pair, "sandbox_memory_cap_mib": SandboxLimits().total_memory_bytes >> 20},
        "pair_control_two_honest": control,
        "episodes": len(records), "honest": len(honest), "hostile": len(records) - len(honest),
        "concurrency": args.concurrency, "wall_s": round(wall, 1),
        "honest_infra_errors": sum(len(r.infra_errors) for r in honest),
        "honest_not_solved": sum(1 for r in honest if not r.success),
        "honest_failures": [{"task": r.task_id, "termination": r.termination, "errors": r.infra_errors[:2]}
                            for r in bad[:10]],
        "hostile_infra_errors": sum(len(r.infra_errors) for r in records if r.seed in hostile),
        "hostile_solved": sum(1 for r in records if r.seed in hostile and r.success),
        "leftover_processes": len(left),
        "leftover_process_details": left[:10],
        "leftover_cgroups": live_cgroups(),
        "uids_leased": len(watch.uids),
        "sandbox_memory_cap_mib": cap >> 20,
        "largest_sandbox_memory_peak_mib": round(max(watch.peaks) / 2**20, 1) if watch.peaks else None,
        "sandboxes_measured": len(watch.peaks),
        "host_mem_available_drop_mib": round((watch.baseline - watch.min_available) / 1024, 1),
        "most_sandboxes_alive_at_once": watch.max_live,
        "targets": {"honest_infra_errors": 0, "honest_not_solved": 0, "leftover_processes": 0},
    }
    result["meets_targets"] = (result["honest_infra_errors"] == 0 and result["honest_not_solved"] == 0
                               and pair["honest_infra_errors"] == 0 and set(pair["honest_rewards"]) == {1.0}
                               and set(control["honest_rewards"]) == {1.0}
                               and result["leftover_processes"] == 0 and not result["leftover_cgroups"])
    write_results("code_hostile" if args.isolation == "auto" else f"code_hostile_{args.isolation}", result)


if __name__ == "__main__":
    asyncio.run(main())
