"""Episode records to and from Parquet and Hugging Face ``datasets``, one row per episode, round-tripping exactly.

Columns follow ``EpisodeRecord``'s fields: scalar fields (ids, split, seed, reward, success, termination...)
are typed columns, ready to filter in pandas, DuckDB or ``datasets``; nested fields (``turns``, the
observations, ``reward_components``, ``infra_errors``, ``task_info``) are JSON text columns holding exactly
what the records file holds, so ``import_records(export_records(...))`` gives equal records and a new
field of a turn needs no schema change. pyarrow and datasets are optional (``pip install 'agentgym[hf]'``).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from agentgym.extras import require
from agentgym.records import EpisodeRecord, RecordFormatError, iter_episodes

BATCH_ROWS = 1024  # episodes per Parquet row group: bounded memory for large records files
FORMAT_KEY = b"agentgym.records"  # Parquet schema metadata: marks a file as exported records
_SCALARS = {str: "string", int: "int64", float: "float64", bool: "bool"}


def _column_kind(hint: Any) -> str:
    """The column type of a field: its scalar type when it is one (None allowed), else "json"."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(hint) if a is not type(None)]
        return _SCALARS.get(kinds[0], "json") if len(kinds) == 1 else "json"
    return _SCALARS.get(hint, "json")


def record_columns() -> dict[str, str]:
    """Column name -> kind ("string", "int64", "float64", "bool" or "json") in ``EpisodeRecord`` field order."""
    hints = typing.get_type_hints(EpisodeRecord)
    return {f.name: _column_kind(hints[f.name]) for f in fields(EpisodeRecord)}


def record_to_row(record: EpisodeRecord) -> dict[str, Any]:
    """One record as a flat row: scalars as they are, nested fields as compact JSON text."""
    data = record.to_json()
    row: dict[str, Any] = {}
    for name, kind in record_columns().items():
        value = data.get(name)
        if kind == "json":
            row[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif kind == "float64" and value is not None:
            row[name] = float(value)
        else:
            row[name] = value
    return row


def row_to_record(row: Mapping[str, Any]) -> EpisodeRecord:
    """A flat row back as a record (``RecordFormatError`` for a row that is not one)."""
    data: dict[str, Any] = {}
    for name, kind in record_columns().items():
        if name not in row:
            continue  # an older export without a later field: the record's default applies
        value = row[name]
        if kind == "json" and value is not None:
            try:
                value = json.loads(value)
            except (TypeError, ValueError) as exc:
                raise RecordFormatError(f"column {name} is not JSON text ({exc})") from None
        data[name] = value
    return EpisodeRecord.from_json(data)


def _arrow_schema() -> Any:
    pa = require("pyarrow", "hf")
    types_ = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
              "json": pa.string()}
    columns = record_columns()
    meta = json.dumps({"json_columns": [n for n, k in columns.items() if k == "json"]})
    return pa.schema([pa.field(n, types_[k]) for n, k in columns.items()], metadata={FORMAT_KEY: meta.encode()})


def _records_of(source: str | Path | Iterable[EpisodeRecord]) -> Iterable[EpisodeRecord]:
    return iter_episodes(source) if isinstance(source, (str, Path)) else source


def _batches(records: Iterable[EpisodeRecord], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record_to_row(record))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_records(source: str | Path | Iterable[EpisodeRecord], out_path: str | Path) -> int:
    """Write records (a records JSONL file, e.g. a run's ``episodes.jsonl``, or records) to Parquet; returns the count."""
    pa = require("pyarrow", "hf")
    parquet = require("pyarrow.parquet", "hf")
    schema = _arrow_schema()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    count = 0
    with parquet.ParquetWriter(tmp, schema) as writer:  # an empty source still gives a valid, empty file
        for batch in _batches(_records_of(source), BATCH_ROWS):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    tmp.replace(out_path)  # a crash never leaves a half-written file under the final name
    return count


def records_to_dataset(source: str | Path | Iterable[EpisodeRecord]) -> Any:
    """Records as a ``datasets.Dataset`` (same columns as the Parquet export; ``push_to_hub``/``save_to_disk`` it)."""
    datasets = require("datasets", "hf")
    pa = require("pyarrow", "hf")
    schema = _arrow_schema()
    rows = [row for batch in _batches(_records_of(source), BATCH_ROWS) for row in batch]
    return datasets.Dataset(pa.Table.from_pylist(rows, schema=schema))


def _rows_of(source: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():  # a folder written by Dataset.save_to_disk
            yield from require("datasets", "hf").load_from_disk(str(path))
            return
        parquet = require("pyarrow.parquet", "hf")
        file = parquet.ParquetFile(path)
        for i in range(file.num_row_groups):
            yield from file.read_row_group(i).to_pylist()
        return
    yield from source  # a datasets.Dataset or any iterable of row mappings


def import_records(source: str | Path | Iterable[Mapping[str, Any]]) -> list[EpisodeRecord]:
    """Records back from a Parquet export, a ``save_to_disk`` folder, a ``datasets.Dataset`` or rows."""
    out = []
    for i, row in enumerate(_rows_of(source)):
        try:
            out.append(row_to_record(row))
        except RecordFormatError as exc:
            raise RecordFormatError(f"{source if isinstance(source, (str, Path)) else 'rows'}: row {i}: {exc}") from None
    return out
