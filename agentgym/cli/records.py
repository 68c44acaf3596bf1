"""CLI for moving episode records: ``agentgym records export`` (to Parquet) and ``agentgym records import`` (back)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from agentgym.errors import AgentGymError

console = Console()
records_app = typer.Typer(no_args_is_help=True, help="Episode records to and from Parquet / Hugging Face datasets.")


@records_app.command("export")
def export(records: Path = typer.Argument(..., help="a records file, e.g. runs/bench/episodes.jsonl"),
           out: Path = typer.Argument(..., help="the Parquet file to write (a folder: save_to_disk of a dataset)"),
           ) -> None:
    """Write a records file as Parquet (OUT ending in .parquet) or as a saved Hugging Face dataset folder (any other OUT)."""
    from agentgym.records import RecordFormatError
    from agentgym.records_export import export_records, records_to_dataset

    if not records.is_file():
        raise typer.BadParameter(f"{records}: no such records file")
    try:
        if out.suffix == ".parquet":
            count = export_records(records, out)
        else:
            dataset = records_to_dataset(records)
            dataset.save_to_disk(str(out))
            count = dataset.num_rows
    except RecordFormatError as exc:  # a damaged records file: say which line, no traceback
        raise AgentGymError(str(exc)) from None
    console.print(f"wrote {count} episodes to {out}")


@records_app.command("import")
def import_(source: Path = typer.Argument(..., help="a Parquet export or a saved dataset folder"),
            out: Path = typer.Argument(..., help="the records file (JSONL) to write; must not exist")) -> None:
    """Turn an export back into a records file that every agentgym command reads (train, compare, report)."""
    from agentgym.records import EpisodeWriter, RecordFormatError
    from agentgym.records_export import import_records

    if out.exists():
        raise typer.BadParameter(f"{out} exists: records files are append-only, pick a new name")
    try:
        records = import_records(source)
    except (ValueError, OSError) as exc:  # RecordFormatError, or a file pyarrow cannot read
        raise AgentGymError(str(exc)) from None
    with EpisodeWriter(out, fsync=False) as writer:
        for record in records:
            writer.write(record)
    console.print(f"wrote {len(records)} episodes to {out}")


def register(app: typer.Typer) -> None:
    """Add the ``records`` command group to the main app."""
    app.add_typer(records_app, name="records")
