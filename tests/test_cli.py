"""The command line as a user types it: envs list/show, run, bench, and kill -9 then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentgym.records import iter_episodes

CLI = [sys.executable, "-m", "agentgym.cli"]


def agentgym(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_envs_list_and_show():
    assert "agentgym/sql-v0" in agentgym("envs", "list").stdout
    shown = agentgym("envs", "show", "agentgym/sql-v0").stdout
    for fragment in ("execute_sql", "submit_sql", "query_timeout_s", "task suite sql-v0", "flights", "test/ood"):
        assert fragment in shown, fragment


def test_run_prints_a_transcript():
    out = agentgym("run", "agentgym/sql-v0", "--policy", "oracle", "--seed", "7").stdout
    assert "Question:" in out and "submit_sql" in out and "success True" in out


def test_unknown_env_is_one_clear_line():
    out = subprocess.run([*CLI, "run", "agentgym/sql-v7"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "did you mean agentgym/sql-v0" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_bench_refuses_the_train_split(tmp_path):
    out = subprocess.run([*CLI, "bench", "agentgym/sql-v0", "--policy", "oracle", "--split", "train",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "held-out splits only" in out.stderr


def test_kill_9_during_bench_then_resume_gives_the_uninterrupted_count(tmp_path):
    args = ["bench", "agentgym/sql-v0", "--policy", "random", "--split", "test", "--episodes", "150",
            "--samples", "2", "--concurrency", "2", "--no-progress"]
    full = tmp_path / "full"
    agentgym(*args, "--out", str(full))
    expected = json.loads((full / "results.json").read_text())

    out = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    episodes = out / "episodes.jsonl"
    deadline = time.monotonic() + 600     # only a bound on a broken run; a loaded machine just takes longer
    while time.monotonic() < deadline and (not episodes.exists() or episodes.read_bytes().count(b"\n") < 40):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI at once (its SQL workers exit when their pipes close)
    proc.wait()
    done_before = sum(1 for _ in iter_episodes(episodes))
    assert 40 <= done_before < 300 and not (out / "results.json").exists()

    agentgym(*args, "--out", str(out), "--resume")
    resumed = json.loads((out / "results.json").read_text())
    keys = [r.key for r in iter_episodes(episodes)]
    assert len(keys) == len(set(keys)) == 300
    assert resumed["episodes"] == expected["episodes"] == 300
    assert resumed["manifest_checksum"] == expected["manifest_checksum"]
    assert resumed["success_rate"] == expected["success_rate"]  # random policy is seeded per episode
