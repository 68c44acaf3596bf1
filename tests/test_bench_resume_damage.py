"""`agentgym bench --resume` on a damaged records file: bad lines are set aside, named, counted, and re-run.

Each test damages a finished run's ``episodes.jsonl`` in one way (every damaged line still ends in a
newline, so it is not a torn write), resumes through the real command line, and checks that the run
finishes with the uninterrupted results, that the damaged bytes are kept in ``episodes.jsonl.damaged``
and that a warning names the lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentgym.records import iter_episodes

CLI = [sys.executable, "-m", "agentgym.cli"]
ARGS = ["bench", "agentgym/sql-v0", "--policy", "oracle", "--split", "test", "--episodes", "6",
        "--concurrency", "2", "--no-progress"]
EPISODES = 6


def agentgym(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "full"
    done = agentgym(*ARGS, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _replace_line(index: int, make: Callable[[bytes], bytes]) -> Callable[[list[bytes]], list[bytes]]:
    def damage(lines: list[bytes]) -> list[bytes]:
        return [make(line) if i == index else line for i, line in enumerate(lines)]
    return damage


def _wrong_types(line: bytes) -> bytes:
    data = json.loads(line)
    data["success"], data["sample"] = "yes", "0"
    return json.dumps(data).encode()


def _wrong_turn_type(line: bytes) -> bytes:
    data = json.loads(line)
    data["turns"][0]["reward"] = [1]
    return json.dumps(data).encode()


# name -> (damage to the list of lines, which line numbers (1-based) end up damaged)
DAMAGE: dict[str, tuple[Callable[[list[bytes]], list[bytes]], list[int]]] = {
    "cut-off JSON as the last line": (_replace_line(5, lambda line: line[: len(line) // 2]), [6]),
    "NUL bytes as the last line": (_replace_line(5, lambda line: b"\0" * len(line)), [6]),
    "{} as the last line": (_replace_line(5, lambda line: b"{}"), [6]),
    "[1,2] as the last line": (_replace_line(5, lambda line: b"[1,2]"), [6]),
    "wrong field types": (_replace_line(1, _wrong_types), [2]),
    "wrong type inside a turn": (_replace_line(4, _wrong_turn_type), [5]),
    "damage in the middle": (_replace_line(2, lambda line: line[:40] + b"\xff\xfe garbage"), [3]),
    "several damaged lines": (lambda lines: [b"{}"] + lines[1:3] + [b"\0\0"] + lines[4:], [1, 4]),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_sets_damaged_lines_aside_and_reruns_their_episodes(finished_run: Path, tmp_path: Path,
                                                                  kind: str) -> None:
    damage, bad_lines = DAMAGE[kind]
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "results.json").unlink()
    records = out / "episodes.jsonl"
    lines = records.read_bytes().split(b"\n")[:-1]
    assert len(lines) == EPISODES
    damaged_lines = damage(lines)
    records.write_bytes(b"".join(line + b"\n" for line in damaged_lines))  # every line ends in a newline

    done = agentgym(*ARGS, "--out", str(out), "--resume")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads((out / "results.json").read_text())
    expected = json.loads((finished_run / "results.json").read_text())
    assert results["episodes"] == EPISODES and results["missing_episodes"] == 0
    assert results["success_rate"] == expected["success_rate"] == 1.0
    assert results["damaged_records_set_aside"] == len(bad_lines)
    keys = [r.key for r in iter_episodes(records)]
    assert len(keys) == len(set(keys)) == EPISODES  # the damaged jobs ran again, once
    kept = (out / "episodes.jsonl.damaged").read_bytes()
    assert kept == b"".join(damaged_lines[n - 1] + b"\n" for n in bad_lines)  # nothing lost, byte for byte
    warning = " ".join(done.stderr.split())  # rich may wrap
    assert f"{len(bad_lines)} damaged line(s) set aside" in warning
    for n in bad_lines:
        assert f"line {n}:" in warning
