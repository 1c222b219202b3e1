"""A report as plain text (terminals) or Markdown (tickets, chat)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from core.answers import Answer
from core.models import Anomaly, Report

TOP_ANOMALIES = 10
TOP_TEMPLATES = 10


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _span(anomaly: Anomaly) -> str:
    if anomaly.start is None:
        return ""
    end = anomaly.end.astimezone(UTC).strftime("%H:%M:%S") if anomaly.end else "?"
    return f"{_when(anomaly.start)}..{end}"


def _clip(text: str, limit: int = 140) -> str:
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_text(report: Report) -> str:
    out: list[str] = [report.summary, ""]
    if report.time_range.start:
        out.append(f"Time range: {_when(report.time_range.start)} .. {_when(report.time_range.end)} UTC")
    if report.counts_by_severity:
        out.append("Severity:   " + ", ".join(f"{k} {v}" for k, v in report.counts_by_severity.items()))
    if report.counts_by_service:
        out.append(
            "Services:   " + ", ".join(f"{k} {v}" for k, v in list(report.counts_by_service.items())[:10])
        )
    if report.root_causes:
        out += ["", "Root-cause hypotheses:"]
        for i, cause in enumerate(report.root_causes, 1):
            out.append(f"  {i}. [{cause.confidence:.2f}] {cause.title}  ({cause.category.value})")
            for note in cause.evidence.notes[:3]:
                out.append(f"       - {_clip(note)}")
            for line in cause.evidence.lines[:2]:
                out.append(f"       > {line.source}:{line.line}: {_clip(line.text, 120)}")
    if report.suspects:
        out += ["", "Suspects:"]
        for i, suspect in enumerate(report.suspects, 1):
            out.append(
                f"  {i}. {suspect.name} ({suspect.kind}, score {suspect.score:.2f}): {_clip(suspect.reason, 160)}"
            )
    if report.anomalies:
        out += [
            "",
            f"Anomalies (top {min(TOP_ANOMALIES, len(report.anomalies))} of {len(report.anomalies)}):",
        ]
        for anomaly in report.anomalies[:TOP_ANOMALIES]:
            out.append(
                f"  [{anomaly.score:6.2f}] {anomaly.source}/{anomaly.kind} {_span(anomaly)}  {_clip(anomaly.description or anomaly.subject)}"
            )
    if report.templates:
        out += ["", "Templates (anomalous first):"]
        for row in report.templates[:TOP_TEMPLATES]:
            mark = "*" if row.anomalous else " "
            out.append(f" {mark}{row.count:8d}  {row.id}  {row.severity.name:5s}  {_clip(row.template, 100)}")
    if report.issues:
        out += ["", f"Input issues ({len(report.issues)}):"]
        out += [f"  {issue}" for issue in report.issues[:10]]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _md_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown section holding one table: the heading, the header row, then a row per cell list."""
    out = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return out


def render_markdown(report: Report) -> str:
    out: list[str] = ["## FaultMaven analysis", "", report.summary, ""]
    if report.root_causes:
        out += _md_table(
            "Root-cause hypotheses",
            ("#", "Confidence", "Category", "Hypothesis"),
            (
                (str(i), f"{cause.confidence:.2f}", f"`{cause.category.value}`", _md(cause.title))
                for i, cause in enumerate(report.root_causes, 1)
            ),
        )
        best = report.root_causes[0]
        if best.evidence.lines or best.evidence.notes:
            out += ["", "Evidence for the best hypothesis:", ""]
            out += [f"- {_md(_clip(note))}" for note in best.evidence.notes[:4]]
            out += [
                f"- `{line.source}:{line.line}` {_md(_clip(line.text, 160))}"
                for line in best.evidence.lines[:3]
            ]
        out.append("")
    if report.suspects:
        out += _md_table(
            "Suspects",
            ("#", "Name", "Kind", "Score", "Why"),
            (
                (
                    str(i),
                    _md(suspect.name),
                    suspect.kind,
                    f"{suspect.score:.2f}",
                    _md(_clip(suspect.reason, 200)),
                )
                for i, suspect in enumerate(report.suspects, 1)
            ),
        )
        out.append("")
    if report.anomalies:
        out += _md_table(
            "Anomalies",
            ("Score", "Source", "Kind", "When", "What"),
            (
                (
                    f"{anomaly.score:.2f}",
                    anomaly.source,
                    anomaly.kind,
                    _span(anomaly) or "-",
                    _md(_clip(anomaly.description or anomaly.subject)),
                )
                for anomaly in report.anomalies[:TOP_ANOMALIES]
            ),
        )
        out.append("")
    if report.templates:
        out += _md_table(
            "Top templates",
            ("Count", "Id", "Severity", "Template"),
            (
                (str(row.count), f"`{row.id}`", row.severity.name, f"`{_md(_clip(row.template, 120))}`")
                for row in report.templates[:TOP_TEMPLATES]
            ),
        )
        out.append("")
    if report.issues:
        out += [f"_{len(report.issues)} input issue(s); first: {_md(str(report.issues[0]))}_", ""]
    return "\n".join(out)


def render_answer_text(answer: Answer) -> str:
    """An engine answer for a terminal: summary, hypotheses, steps with their ids (for feedback)."""
    out = [answer.summary, ""]
    engine = answer.engine + (f" — {answer.engine_note}" if answer.engine_note else "")
    out.append(f"session {answer.session_id}  turn {answer.turn}  ({answer.kind.value}, engine: {engine})")
    if answer.root_causes:
        out += ["", "Root causes:"]
        for cause in answer.root_causes:
            mark = " ✓" if cause.status == "accepted" else ""
            out.append(
                f"  [{cause.confidence:.2f}] {cause.title} ({cause.category.value}){mark}   id={cause.id}"
            )
            for note in cause.evidence.notes[:2]:
                out.append(f"         - {_clip(note)}")
            for line in cause.evidence.lines[:2]:
                out.append(f"         > {line.source}:{line.line}: {_clip(line.text, 110)}")
    if answer.next_steps:
        out += ["", "Next steps:"]
        for i, step in enumerate(answer.next_steps, 1):
            mark = " ✓" if step.status == "accepted" else ""
            out.append(f"  {i}. {step.title}{mark}   id={step.id}")
            if step.command:
                out.append(f"       $ {step.command}")
            if step.why:
                out.append(f"       why: {_clip(step.why, 200)}")
    if answer.similar_incidents:
        out += ["", "Similar past incidents:"]
        for hit in answer.similar_incidents:
            out.append(f"  {hit.id} [{hit.score:.2f}] {hit.title} — fix: {_clip(hit.fix, 120)}")
    if answer.insights:
        out += ["", "Insights:"]
        out += [f"  - {_clip(text, 200)}" for text in answer.insights]
    return "\n".join(out) + "\n"
