"""The analysis core's one entry point: logs and metrics in, a :class:`~core.models.Report` out.

normalize → templates → anomalies (logs and metrics) → incident start → suspects → root-cause hypotheses.
Log records are streamed into a compact table (see :mod:`core.logtable`); nothing holds the whole input.
"""

from __future__ import annotations

import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from core.anomalies.logs import (
    Burst,
    Timeline,
    build_timeline,
    detect_log_anomalies,
    error_bursts,
    incident_start,
    window_counts,
)
from core.anomalies.metrics import detect_metric_anomalies
from core.answers import LogInput
from core.attribution import reattribute
from core.classify import classify
from core.focus import Focus, parse_focus
from core.knowledge_base import KnowledgeBase
from core.logtable import NO_SERVICE, LogTable
from core.models import (
    Anomaly,
    MetricSeries,
    ParseIssue,
    Report,
    Severity,
    TemplateSummary,
    TimeRange,
)
from core.normalize import read_logs
from core.suspects import rank_suspects
from core.templates import TemplateMiner

log = logging.getLogger(__name__)


class LogFile(BaseModel):
    """A log file on disk ('-' is stdin), with an optional forced format."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    format: str | None = None


LogSourceSpec = LogInput | LogFile
ProgressCallback = Callable[[int], None]
MAX_TEMPLATES_IN_REPORT = 200
PROGRESS_EVERY = 20_000
_GENERIC_STEMS = {
    "app", "application", "server", "output", "log", "logs", "messages", "syslog", "combined", "all",
    "merged", "stdout", "stderr", "console", "access", "error", "errors",
    "incident", "export", "dump", "trace", "debug", "main",
}  # fmt: skip
_STEM_SUFFIX = re.compile(r"(?:[-_.](?:access|error|errors|logs?|\d{8,}))+$")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def analyze(
    *,
    logs: Sequence[LogSourceSpec] = (),
    metrics: Sequence[MetricSeries] = (),
    query: str = "",
    knowledge: KnowledgeBase | None = None,
    miner: TemplateMiner | None = None,
    progress: ProgressCallback | None = None,
    issues: list[ParseIssue] | None = None,
) -> Report:
    """Analyze logs and metrics. ``issues`` collects input problems (they are also put in the report)."""
    issues = issues if issues is not None else []
    table = LogTable(miner)
    _ingest(table, logs, issues=issues, progress=progress)
    reattribute(table)
    timeline = build_timeline(table)
    focus = parse_focus(query, known_services=[s for s in table.services if s != NO_SERVICE])

    metric_anomalies = _comparable(detect_metric_anomalies(metrics, focus=[*focus.families, *focus.services]))
    bursts = error_bursts(table, timeline)
    start = _incident_start(timeline, bursts=bursts, metric_anomalies=metric_anomalies)
    log_anomalies = detect_log_anomalies(table, timeline, bursts=bursts, start=start)
    anomalies = _weigh(log_anomalies + metric_anomalies, focus)

    suspects = rank_suspects(
        table,
        anomalies=anomalies,
        series=metrics,
        start=start,
        focus_services=focus.services,
        window=window_counts(table, timeline, start=start),
    )
    kb = knowledge if knowledge is not None else KnowledgeBase.load()
    root_causes = classify(
        table, anomalies=anomalies, suspects=suspects, knowledge=kb, focus=focus, query=query
    )
    templates = _template_summaries(table, timeline, anomalies)
    report = Report(
        summary="",
        time_range=_time_range(table, timeline, metrics),
        time_basis="timestamps" if timeline.basis == "timestamps" else "positions",
        incident_start=timeline.to_time(start) if start is not None else _metric_start(metric_anomalies),
        counts_by_severity=_severity_counts(table),
        counts_by_service=_service_counts(table),
        records=len(table),
        templates=templates,
        anomalies=anomalies[:100],
        suspects=suspects,
        root_causes=root_causes,
        issues=issues[:200],
    )
    report.summary = summarize(report, metrics=len(metrics))
    return report


def _ingest(
    table: LogTable,
    logs: Sequence[LogSourceSpec],
    *,
    issues: list[ParseIssue],
    progress: ProgressCallback | None,
) -> None:
    names = [spec.name if isinstance(spec, LogInput) else str(spec.path) for spec in logs]
    several = len(logs) > 1
    next_tick = PROGRESS_EVERY
    own_services: dict[str, Counter[str | None]] = {}
    for spec, name in zip(logs, names, strict=True):
        fallback = service_from_source(name) if several else None
        if isinstance(spec, LogInput):
            records = read_logs(spec.lines, name=spec.name, fmt=spec.format, issues=issues)
        else:
            path = str(spec.path)
            records = read_logs(path, name="<stdin>" if path == "-" else path, fmt=spec.format, issues=issues)
        # only per-service files name their service (see _name_services_by_file)
        seen: Counter[str | None] | None = Counter() if fallback is not None else None
        if progress is None:
            table.add_all(records, service=fallback, own_services=seen)
        else:
            # in runs that end where the table reaches the next tick: progress is told after the same
            # records as if it were checked after every one
            stream = iter(records)
            while True:
                size = len(table)
                table.add_all(islice(stream, max(next_tick - size, 1)), service=fallback, own_services=seen)
                if len(table) == size:
                    break
                if len(table) >= next_tick:
                    progress(len(table))
                    next_tick += PROGRESS_EVERY
        if seen is not None and fallback is not None:
            own_services[fallback] = seen
    _name_services_by_file(table, own_services)
    if progress is not None:
        progress(len(table))


def _name_services_by_file(table: LogTable, own_services: dict[str, Counter[str | None]]) -> None:
    """A per-service file whose records all carry one service name that is not a DNS-style label
    (Elasticsearch's ``ES_ECS``, ``MyApp``) names that service after the file instead."""
    claimed: Counter[str] = Counter()
    for seen in own_services.values():
        claimed.update(s for s in seen if s)
    for stem, seen in own_services.items():
        names = [s for s in seen if s]
        if len(names) != 1 or seen[None] or claimed[names[0]] > 1:
            continue
        name = names[0]
        if _DNS_LABEL.fullmatch(name) or stem in table.services or name not in table.services:
            continue
        table.rename_service(name, stem)


def service_from_source(name: str) -> str | None:
    """A service name from a per-service log file name (``payments.log`` → ``payments``), if it looks like one."""
    stem = re.sub(r"\.(?:gz|log|txt|jsonl?|ndjson|csv|out)$", "", Path(name).name.lower())
    stem = re.sub(r"\.(?:gz|log|txt|jsonl?|ndjson|csv|out)$", "", stem)
    stem = _STEM_SUFFIX.sub("", stem)
    if (
        not stem
        or stem in _GENERIC_STEMS
        or stem.startswith("<")
        or not re.fullmatch(r"[a-z][a-z0-9_.-]*", stem)
    ):
        return None
    return stem


def _incident_start(
    timeline: Timeline, *, bursts: Sequence[Burst], metric_anomalies: Sequence[Anomaly]
) -> float | None:
    """The earliest strong deviation: the first error burst, or a strong metric anomaly shortly before it."""
    log_starts = [b.start for b in bursts if b.level == "error"] or [b.start for b in bursts]
    first_log = incident_start(log_starts)
    if timeline.basis != "timestamps":
        return first_log
    strong = sorted(metric_anomalies, key=lambda a: -a.score)[:5]
    metric_starts = [a.start.timestamp() for a in strong if a.start is not None]
    if first_log is None:
        return None  # metrics alone: the report's incident_start comes from the metric anomalies
    lead = max(1800.0, 10 * timeline.width)
    early = [t for t in metric_starts if first_log - lead <= t < first_log]
    return min([first_log, *early])


def _comparable(anomalies: list[Anomaly]) -> list[Anomaly]:
    """Metric scores are robust z-values that can run into the hundreds; log scores live around 1-20.
    A log scale puts both on one axis without changing either side's order."""
    for anomaly in anomalies:
        anomaly.score = round(2.0 * math.log1p(anomaly.score), 3)
    return anomalies


def _metric_start(anomalies: Sequence[Anomaly]) -> datetime | None:
    strong = sorted(anomalies, key=lambda a: -a.score)[:3]
    starts = [a.start for a in strong if a.start is not None]
    return min(starts) if starts else None


def _weigh(anomalies: list[Anomaly], focus: Focus) -> list[Anomaly]:
    """Anomalies the question is about weigh more; strongest first."""
    if focus.services or focus.families:
        for anomaly in anomalies:
            about_service = anomaly.service is not None and anomaly.service in focus.services
            about_metric = anomaly.source == "metrics" and focus.matches_metric(anomaly.subject)
            if about_service or about_metric:
                anomaly.score = round(anomaly.score * 1.5, 3)
    anomalies.sort(key=lambda a: -a.score)
    return anomalies


def _template_summaries(
    table: LogTable, timeline: Timeline, anomalies: Sequence[Anomaly]
) -> list[TemplateSummary]:
    scores: dict[str, float] = {}
    for anomaly in anomalies:
        if anomaly.source != "logs":
            continue
        for tid in anomaly.evidence.template_ids:
            scores[tid] = max(scores.get(tid, 0.0), anomaly.score)
    rows: list[TemplateSummary] = []
    for cid, stats in table.clusters.items():
        tid = table.miner.template_id(cid)
        rows.append(
            TemplateSummary(
                id=tid,
                template=table.miner.template(cid),
                count=stats.count,
                severity=_severity(stats.severity),
                first_seen=timeline.to_time(stats.first_ts) if math.isfinite(stats.first_ts) else None,
                last_seen=timeline.to_time(stats.last_ts) if math.isfinite(stats.last_ts) else None,
                example=stats.examples[0].text if stats.examples else "",
                anomalous=tid in scores,
                score=round(scores.get(tid, 0.0), 3),
            )
        )
    rows.sort(key=lambda r: (-r.score, -r.count, r.id))
    return rows[:MAX_TEMPLATES_IN_REPORT]


_SEVERITY_LEVELS = tuple(int(s) for s in Severity)


def _severity_floor(value: int) -> int:
    return max(level for level in _SEVERITY_LEVELS if level <= value)


_SEVERITY_OF = {value: Severity(_severity_floor(value)) for value in range(256)}  # every severity number


def _severity(value: int) -> Severity:
    """The Severity whose range holds ``value``."""
    known = _SEVERITY_OF.get(value)
    return known if known is not None else Severity(_severity_floor(value))


def _time_range(table: LogTable, timeline: Timeline, metrics: Sequence[MetricSeries]) -> TimeRange:
    times: list[datetime] = []
    if timeline.basis == "timestamps" and len(table):
        for value in (timeline.start, timeline.end):
            moment = timeline.to_time(value)
            if moment is not None:
                times.append(moment)
    for series in metrics:
        stamps = [p.timestamp for p in series.points if p.timestamp is not None]
        if stamps:
            times += [min(stamps), max(stamps)]
    if not times:
        return TimeRange()
    return TimeRange(start=min(times), end=max(times))


def _severity_counts(table: LogTable) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for value, count in _value_counts(table.severity).items():
        counts[_severity(value).name] += count
    return dict(counts.most_common())


def _service_counts(table: LogTable) -> dict[str, int]:
    counts = _value_counts(table.service)
    return {table.services[sid]: count for sid, count in counts.most_common()}


_DTYPES = {"B": np.uint8, "H": np.uint16}  # LogTable's severity and service columns
_NUMPY_COUNTS_FROM = 256  # below this many values, counting them one by one is the cheaper way


def _value_counts(column: array[int]) -> Counter[int]:
    """``Counter(column)``, counted with numpy on long columns: the same counts, with the values in the
    order they first appear (the order ``most_common`` keeps for equal counts)."""
    if len(column) < _NUMPY_COUNTS_FROM:
        return Counter(column)
    values, first, counts = np.unique(
        np.frombuffer(column, dtype=_DTYPES[column.typecode]), return_index=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")
    return Counter(dict(zip(values[order].tolist(), counts[order].tolist(), strict=True)))


def summarize(report: Report, *, metrics: int = 0) -> str:
    """Two or three plain sentences: what changed, when, where, and what it looks like."""
    parts: list[str] = []
    errors = report.counts_by_severity.get("ERROR", 0) + report.counts_by_severity.get("FATAL", 0)
    scope = f"{report.records} log records"
    if metrics:
        scope += f" and {metrics} metric series"
    if report.incident_start is not None:
        parts.append(
            f"Analyzed {scope}; the incident starts around "
            f"{report.incident_start.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC."
        )
    elif report.time_basis == "positions" and report.records:
        parts.append(f"Analyzed {scope}; timestamps were missing, so time is measured by record position.")
    else:
        parts.append(f"Analyzed {scope}.")
    if errors:
        parts.append(f"{errors} error records, {len(report.anomalies)} anomalies found.")
    elif report.anomalies:
        parts.append(f"No error records; {len(report.anomalies)} anomalies found.")
    else:
        parts.append("No errors and no anomalies found.")
    if report.suspects:
        top = report.suspects[0]
        parts.append(f"Most likely origin: {top.name} ({top.kind}).")
    if report.root_causes:
        cause = report.root_causes[0]
        parts.append(
            f"Best hypothesis: {cause.title} [{cause.category.value}, confidence {cause.confidence:.2f}]."
        )
    return " ".join(parts)
