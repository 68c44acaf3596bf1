"""Benchmark reports a person can read: report.md with tables and sample transcripts, plus a PNG plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentgym.messages import message_text
from agentgym.records import EpisodeRecord


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(ci: Sequence[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def success_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """Success over all episodes first, then over the scored ones when infrastructure failures make them differ."""
    rows = [("success rate (all episodes)", f"{_fmt(results['success_rate'])} {_ci(results['success_ci95'])}")]
    scored = results.get("success_rate_scored")
    if scored is not None and scored != results["success_rate"]:
        rows.append(("success rate (scored episodes only)",
                     f"{_fmt(scored)} {_ci(results['success_ci95_scored'])}"))
    return rows


def plot_results(results: dict[str, Any], records: Sequence[EpisodeRecord], path: str | Path) -> Path:
    """Success by family with Wilson 95% error bars, and the distribution of turns per episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    groups = results.get("by_family") or {"all": {"success_rate": results["success_rate"],
                                                   "success_ci95": results["success_ci95"]}}
    names = list(groups)
    rates = [groups[n]["success_rate"] or 0.0 for n in names]
    lo = [max(0.0, r - groups[n]["success_ci95"][0]) for n, r in zip(names, rates)]  # clamp float noise
    hi = [max(0.0, groups[n]["success_ci95"][1] - r) for n, r in zip(names, rates)]
    ax1.bar(names, rates, yerr=[lo, hi], capsize=4, color="#4C72B0")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("success rate (95% Wilson CI)")
    ax1.set_title(f"{results['env']} [{results['split']}] - {results['policy']}")
    ax1.tick_params(axis="x", rotation=30)
    turns = [r.num_turns for r in records if r.scored]
    if turns:
        ax2.hist(turns, bins=range(1, max(turns) + 2), align="left", rwidth=0.8, color="#55A868")
        ax2.set_xticks(range(1, max(turns) + 1))
    ax2.set_xlabel("turns per episode")
    ax2.set_ylabel("episodes")
    ax2.set_title(f"mean turns {_fmt(results.get('mean_turns'), 2)}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def describe_calls(message: dict[str, Any]) -> str:
    """``name(arguments)`` for each tool call of an assistant message, tolerating malformed entries."""
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(calls, list):
        return ""
    out = []
    for c in calls:
        fn = c.get("function") if isinstance(c, dict) else None
        out.append(f"{fn.get('name')}({fn.get('arguments')})" if isinstance(fn, dict) else f"<malformed call {c!r:.80}>")
    return "; ".join(out)


def _transcript(record: EpisodeRecord, limit: int = 1200) -> str:
    lines = [f"task `{record.task_id}` ({record.task_info.get('family')}/{record.task_info.get('template')}), "
             f"termination **{record.termination}**, success {record.success}, reward {_fmt(record.reward)}", "",
             "```text"]
    for m in record.first_observation:
        lines.append(f"[{m.get('role')}] {message_text(m)[:limit]}")
    for t in record.turns:
        text = (t.action_text or "") + " " + describe_calls(t.action)
        lines.append(f"[assistant] {text.strip()[:limit]}")
        nxt = record.turns[t.turn + 1].observation if t.turn + 1 < len(record.turns) else record.final_observation
        for m in nxt:
            lines.append(f"[{m.get('role')}] {message_text(m)[:limit]}")
    lines.append("```")
    return "\n".join(lines)


def write_report(results: dict[str, Any], records: Sequence[EpisodeRecord], out_dir: str | Path) -> Path:
    """Write report.md (and plot.png) into `out_dir`; returns the report path."""
    out = Path(out_dir)
    plot = plot_results(results, records, out / "plot.png")
    lat = results["latency_ms"]
    rows = [
        ("environment", results["env"]), ("split", results["split"]),
        ("manifest checksum", f"`{results['manifest_checksum'][:16]}`"), ("policy", results["policy"]),
        ("episodes (scored)", f"{results['episodes']} ({results['scored_episodes']})"),
        *success_rows(results),
        ("mean reward", _fmt(results["mean_reward"])), ("mean turns", _fmt(results["mean_turns"], 2)),
        ("infrastructure errors", f"{results['infra_errors']} ({_fmt(results.get('infra_error_rate'))})"),
        ("retried episodes (attempts)", f"{results.get('retried_episodes')} ({results.get('attempts')})"),
        ("invalid-action rate", _fmt(results.get("invalid_action_rate"))),
        ("tool-error rate", _fmt(results.get("tool_error_rate"))),
        ("policy latency p50 / p99 (ms)", f"{_fmt(lat['policy']['p50'], 1)} / {_fmt(lat['policy']['p99'], 1)}"),
        ("env latency p50 / p99 (ms)", f"{_fmt(lat['env']['p50'], 1)} / {_fmt(lat['env']['p99'], 1)}"),
    ]
    for k, v in (results.get("pass_at_k") or {}).items():
        rows.append((f"pass@{k}", _fmt(v)))
    warning = results.get("infra_error_warning")
    md = [f"# Benchmark: {results['env']} on `{results['split']}` with `{results['policy']}`", "",
          *([f"> **Warning: this run failed its infrastructure check.** {warning}", ""] if warning else []),
          "| metric | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
          f"![success by family and turns]({plot.name})", ""]
    if results.get("reward_components"):
        md += ["## Reward components (means; reported, never mixed into the reward)", "", "| component | mean |",
               "|---|---|", *[f"| {k} | {_fmt(v)} |" for k, v in results["reward_components"].items()], ""]
    for field in ("axis", "family", "difficulty"):
        groups = results.get(f"by_{field}")
        if groups:
            md += [f"## By {field}", "", f"| {field} | episodes (scored) | success | 95% CI | success (scored) |",
                   "|---|---|---|---|---|",
                   *[f"| {k} | {g['episodes']} ({g.get('scored_episodes', g['episodes'])}) | {_fmt(g['success_rate'])} "
                     f"| {_ci(g['success_ci95'])} | {_fmt(g.get('success_rate_scored'))} |"
                     for k, g in groups.items()], ""]
    md += ["## Terminations", "", "| termination | episodes |", "|---|---|",
           *[f"| {k} | {v} |" for k, v in sorted(results["terminations"].items())], ""]
    examples = []
    for want in (True, False):
        match = next((r for r in records if r.success is want), None)
        if match is not None:
            examples.append(("a success" if want else "a failure", match))
    failed = next((r for r in records if not r.scored), None)
    if failed is not None:
        examples.append(("an infrastructure failure", failed))
    if examples:
        md += ["## Example transcripts", ""]
        for title, r in examples:
            md += [f"### {title}", "", _transcript(r), ""]
            if r.infra_errors:
                md += ["errors: " + "; ".join(f"{e.get('where')}: {e.get('message')}" for e in r.infra_errors), ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
