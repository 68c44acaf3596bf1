"""Episode records to Parquet and Hugging Face datasets and back: equal records, typed columns, bad rows named."""

from __future__ import annotations

import json

import pytest
from flaky_env import FlakyGuessEnv
from guess_env import GuessEnv

from agentgym.benchmark import BenchConfig, run_benchmark
from agentgym.policies.oracle import OraclePolicy
from agentgym.policies.random_policy import RandomPolicy
from agentgym.records import EpisodeRecord, RecordFormatError, TurnRecord, iter_episodes

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from agentgym.records_export import export_records, import_records, record_columns, records_to_dataset  # noqa: E402


async def bench_records(tmp_path) -> list[EpisodeRecord]:
    """Real records: oracle, random (multi-turn, tool errors) and flaky-env (infrastructure failures) runs."""
    paths = []
    for name, policy, factory in (("oracle", OraclePolicy(), lambda: GuessEnv(split="test")),
                                  ("random", RandomPolicy(seed=1), lambda: GuessEnv(split="test")),
                                  ("flaky", OraclePolicy(), lambda: FlakyGuessEnv(split="test"))):
        config = BenchConfig(env_id="example/guess-v0", policy=name, split="test", episodes=6, concurrency=3)
        await run_benchmark(config, policy, tmp_path / name, env_factory=factory, max_infra_error_rate=1.0)
        paths.append(tmp_path / name / "episodes.jsonl")
    out = tmp_path / "all.jsonl"
    out.write_bytes(b"".join(p.read_bytes() for p in paths))
    return list(iter_episodes(out))


def token_record() -> EpisodeRecord:
    """A trainer's record: tokens, log-probs, loss spans (tuples), a str model version, non-ASCII text."""
    turn = TurnRecord(turn=1, observation=[{"role": "user", "content": "héllo ✓"}],
                      action={"role": "assistant", "content": "<guess>3</guess>"}, action_text="<guess>3</guess>",
                      reward=0.25, info={"nested": {"list": [1, None, 2.5]}}, prompt_token_ids=[1, 2, 3],
                      token_ids=[4, 5], logprobs=[-0.5, -1e-9], loss_mask_spans=[(3, 5)], finish_reason="stop",
                      model_version="step-7", policy_ms=1.5, env_ms=0.25)
    return EpisodeRecord(episode_id="e1", env_id="example/guess-v0", task_id="t1", split=None, seed=None,
                         turns=[turn], reward=0.25, outcome_reward=None, success=None, termination="deadline",
                         reward_components={"turns_used": 1.0}, task_info={"family": "range-10"})


async def test_bench_records_round_trip_through_parquet(tmp_path):
    records = await bench_records(tmp_path)
    assert len(records) == 18 and any(r.num_turns > 1 for r in records) and any(not r.scored for r in records)
    assert export_records(tmp_path / "all.jsonl", tmp_path / "episodes.parquet") == 18
    back = import_records(tmp_path / "episodes.parquet")
    assert back == records
    assert [r.to_json() for r in back] == [r.to_json() for r in records]


def test_token_fields_and_unscored_episodes_round_trip_exactly(tmp_path):
    record = token_record()
    export_records([record], tmp_path / "one.parquet")
    (back,) = import_records(tmp_path / "one.parquet")
    assert back == record and back.turns[0].loss_mask_spans == [(3, 5)]
    assert json.dumps(back.to_json()) == json.dumps(record.to_json())


def test_scalar_fields_are_typed_columns_and_nested_ones_json_text(tmp_path):
    export_records([token_record()], tmp_path / "one.parquet")
    schema = pq.read_schema(tmp_path / "one.parquet")
    assert schema.names == list(record_columns())
    assert schema.field("reward").type == pa.float64() and schema.field("seed").type == pa.int64()
    assert schema.field("success").type == pa.bool_() and schema.field("split").type == pa.string()
    table = pq.read_table(tmp_path / "one.parquet")
    assert table.column("success").to_pylist() == [None]  # unscored stays null, never False
    assert json.loads(table.column("turns").to_pylist()[0])[0]["token_ids"] == [4, 5]


async def test_hugging_face_dataset_round_trip_in_memory_and_on_disk(tmp_path):
    pytest.importorskip("datasets")
    records = await bench_records(tmp_path)
    dataset = records_to_dataset(records)
    assert dataset.num_rows == 18 and dataset.column_names == list(record_columns())
    assert sum(dataset.filter(lambda row: row["success"] is True)["success"]) == sum(r.success is True for r in records)
    assert import_records(dataset) == records
    dataset.save_to_disk(str(tmp_path / "saved"))
    assert import_records(tmp_path / "saved") == records


def test_empty_source_gives_an_empty_valid_file(tmp_path):
    assert export_records([], tmp_path / "empty.parquet") == 0
    assert import_records(tmp_path / "empty.parquet") == []


def test_a_row_that_is_not_a_record_is_named(tmp_path):
    good = token_record()
    export_records([good, good], tmp_path / "two.parquet")
    table = pq.read_table(tmp_path / "two.parquet")
    turns = table.column("turns").to_pylist()
    turns[1] = "{not json"
    pq.write_table(table.set_column(table.schema.get_field_index("turns"), "turns", pa.array(turns)),
                   tmp_path / "bad.parquet")
    with pytest.raises(RecordFormatError, match=r"bad.parquet: row 1: column turns is not JSON"):
        import_records(tmp_path / "bad.parquet")
    rows = pq.read_table(tmp_path / "two.parquet").to_pylist()
    rows[0]["reward"] = "lots"
    with pytest.raises(RecordFormatError, match=r"rows: row 0: field reward has the wrong type"):
        import_records(rows)


async def test_cli_export_then_import_gives_the_same_records_file(tmp_path):
    from typer.testing import CliRunner

    from agentgym.cli import app

    records = await bench_records(tmp_path)
    runner = CliRunner()
    exported = runner.invoke(app, ["records", "export", str(tmp_path / "all.jsonl"), str(tmp_path / "e.parquet")])
    assert exported.exit_code == 0 and "wrote 18 episodes" in exported.output, exported.output
    imported = runner.invoke(app, ["records", "import", str(tmp_path / "e.parquet"), str(tmp_path / "back.jsonl")])
    assert imported.exit_code == 0, imported.output
    assert list(iter_episodes(tmp_path / "back.jsonl")) == records
    again = runner.invoke(app, ["records", "import", str(tmp_path / "e.parquet"), str(tmp_path / "back.jsonl")])
    assert again.exit_code != 0 and "append-only" in again.output  # never appends to an existing records file
    pytest.importorskip("datasets")
    saved = runner.invoke(app, ["records", "export", str(tmp_path / "all.jsonl"), str(tmp_path / "saved")])
    assert saved.exit_code == 0 and (tmp_path / "saved" / "dataset_info.json").exists(), saved.output
    assert import_records(tmp_path / "saved") == records
