"""Episode records: JSONL round trip, crash-torn lines, and reading back as a dataset."""

from __future__ import annotations

import json

import pytest

from agentgym.records import (
    EpisodeDataset,
    EpisodeRecord,
    EpisodeWriter,
    RecordFormatError,
    TurnRecord,
    damaged_path,
    iter_episodes,
    set_aside_damaged,
)


def record(i: int, success: bool | None = True) -> EpisodeRecord:
    turn = TurnRecord(turn=0, observation=[{"role": "user", "content": "q"}], action={"role": "assistant", "content": "a"},
                      action_text="a", reward=1.0, terminated=True, info={"x": float("nan"), "n": 2},
                      prompt_token_ids=[1, 2, 3], token_ids=[4, 5], logprobs=[-0.1, -0.2], loss_mask_spans=[(3, 5)],
                      policy_ms=1.5, env_ms=0.5)
    return EpisodeRecord(episode_id=f"e{i}", env_id="env", task_id=f"t{i}", split="test", seed=i, turns=[turn],
                         reward=1.0 if success else None, success=success, termination="submitted")


def test_round_trip_keeps_tokens_spans_and_makes_info_json_safe(tmp_path):
    path = tmp_path / "ep.jsonl"
    with EpisodeWriter(path) as w:
        w.write(record(0))
    [back] = list(iter_episodes(path))
    assert back.turns[0].token_ids == [4, 5] and back.turns[0].loss_mask_spans == [(3, 5)]
    assert back.turns[0].info == {"x": None, "n": 2}  # NaN is not JSON: stored as null
    assert back.key == "t0#0" and back.scored


def test_torn_last_line_is_skipped_and_cut_before_appending(tmp_path):
    path = tmp_path / "ep.jsonl"
    with EpisodeWriter(path) as w:
        w.write(record(0))
        w.write(record(1))
    full = path.read_bytes()
    path.write_bytes(full[: len(full) - 40])  # a crash mid-write of the second line
    assert [r.task_id for r in iter_episodes(path)] == ["t0"]
    with EpisodeWriter(path) as w:
        w.write(record(2))
    lines = path.read_bytes().split(b"\n")
    assert [json.loads(x)["task_id"] for x in lines if x] == ["t0", "t2"]


def test_a_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "ep.jsonl"
    path.write_text('{"bad json\n' + json.dumps(record(0).to_json()) + "\n")
    with pytest.raises(ValueError, match="line 1"):
        list(iter_episodes(path))


@pytest.mark.parametrize("line", [b"{}", b"[1,2]", b"\0\0\0", b'{"episode_id": "e"', b"null", b'"text"'])
def test_a_line_that_is_not_a_record_is_named(tmp_path, line):
    path = tmp_path / "ep.jsonl"
    path.write_bytes(json.dumps(record(0).to_json()).encode() + b"\n" + line + b"\n")
    with pytest.raises(RecordFormatError, match="line 2 is not an episode record"):
        list(iter_episodes(path))


@pytest.mark.parametrize("field, value", [("task_id", 3), ("sample", "0"), ("sample", True), ("success", "yes"),
                                          ("reward", "1.0"), ("turns", "none"), ("infra_errors", {}),
                                          ("reward_components", {"a": "b"})])
def test_wrongly_typed_fields_are_refused(field, value):
    data = record(0).to_json()
    data[field] = value
    with pytest.raises(RecordFormatError, match=field):
        EpisodeRecord.from_json(data)


def test_wrongly_typed_turn_fields_are_refused():
    data = record(0).to_json()
    data["turns"][0]["token_ids"] = [1, "2"]
    with pytest.raises(RecordFormatError, match=r"turns\[0\]\.token_ids"):
        EpisodeRecord.from_json(data)
    del data["turns"][0]["action_text"]
    with pytest.raises(RecordFormatError, match="missing"):
        EpisodeRecord.from_json(data)


def test_set_aside_keeps_good_lines_in_order_and_damaged_bytes_beside(tmp_path):
    path = tmp_path / "ep.jsonl"
    good = [json.dumps(record(i).to_json()).encode() for i in range(3)]
    path.write_bytes(good[0] + b"\n{}\n" + good[1] + b"\n\0\xff\n" + good[2] + b"\n" + good[0][:30])
    damaged = set_aside_damaged(path)
    assert [(d.line, d.raw) for d in damaged] == [(2, b"{}"), (4, b"\0\xff"), (6, good[0][:30])]
    assert "torn" in damaged[-1].reason and "JSON" in damaged[1].reason
    assert path.read_bytes() == b"".join(g + b"\n" for g in good)
    assert damaged_path(path).read_bytes() == b"{}\n\0\xff\n" + good[0][:30] + b"\n"
    assert [r.task_id for r in iter_episodes(path)] == ["t0", "t1", "t2"]
    assert set_aside_damaged(path) == [] and damaged_path(path).read_bytes().count(b"\n") == 3


async def test_async_writes_from_many_tasks_never_interleave(tmp_path):
    import asyncio

    path = tmp_path / "ep.jsonl"
    with EpisodeWriter(path, fsync=False) as w:
        await asyncio.gather(*(w.awrite(record(i)) for i in range(200)))
    assert sorted(r.task_id for r in iter_episodes(path)) == sorted(f"t{i}" for i in range(200))


def test_dataset_filters_and_turn_rows(tmp_path):
    path = tmp_path / "ep.jsonl"
    with EpisodeWriter(path) as w:
        for i, s in enumerate([True, False, None]):
            w.write(record(i, s))
    ds = EpisodeDataset.load(path)
    assert len(ds) == 3 and len(ds.filter(scored_only=True)) == 2 and len(ds.filter(success=True)) == 1
    rows = ds.filter(success=True).turn_rows()
    assert rows == [{**rows[0], "token_ids": [4, 5], "loss_mask_spans": [(3, 5)], "reward": 1.0, "turn": 0}]
