"""Log anomalies over a :class:`~core.logtable.LogTable`.

Detectors: per-service error/warning bursts against the data's own baseline (robust statistics), templates
that appear only in the incident window, template frequency shifts (a G-test of each template's share before
and after the incident start, Bonferroni-corrected), rare error templates, exception groups, and crash/restart
signatures. With too few timestamps, time is replaced by record position and the report says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from core.knowledge_base import ignorecase_fold, required_literals
from core.logtable import NO_SERVICE, LogTable
from core.models import Anomaly, Evidence, Severity
from core.stacktraces import _CRASH_PATTERNS as CRASH_PATTERNS  # crash_signature's table (see _crash_kind)

ERROR = int(Severity.ERROR)
WARN = int(Severity.WARN)
TARGET_BUCKETS = 60
BURST_Z = 4.0
MIN_BURST_COUNT = 3
SHIFT_ALPHA = 1e-3
SHIFT_MIN_RATIO = 3.0
_NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True, slots=True)
class Timeline:
    """The x axis the detectors use: epoch seconds, or record positions when timestamps are scarce."""

    x: npt.NDArray[np.float64]
    basis: str  # "timestamps" | "positions"
    start: float
    end: float
    width: float
    buckets: int

    def bucket_of(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        idx = np.floor((values - self.start) / self.width).astype(np.int64)
        # the same as np.clip(idx, 0, buckets - 1), without np.clip's overhead (tens of µs on small arrays)
        np.maximum(idx, 0, out=idx)
        np.minimum(idx, self.buckets - 1, out=idx)
        return idx

    def to_time(self, value: float) -> datetime | None:
        if self.basis != "timestamps" or not math.isfinite(value):
            return None
        return _utc_time(value)


@lru_cache(maxsize=4096)
def _utc_time(value: float) -> datetime:
    """``datetime.fromtimestamp(value, UTC)``, kept: reports ask for the same few moments many times."""
    return datetime.fromtimestamp(value, UTC)


def build_timeline(table: LogTable) -> Timeline:
    cols = table.columns()
    n = len(cols.cluster)
    if n and table.with_timestamp >= max(1, n // 2):
        x = _forward_fill(cols.ts.copy())
        finite = x[np.isfinite(x)]
        start, end = float(finite.min()), float(finite.max())
        span = max(end - start, 1.0)
        width = float(next((w for w in _NICE_SECONDS if span / w <= TARGET_BUCKETS * 2), 86400))
        width = max(width, span / (TARGET_BUCKETS * 2))
        basis = "timestamps"
    else:
        x = np.arange(n, dtype=np.float64)
        start, end = 0.0, float(max(n - 1, 0))
        width = max(1.0, math.ceil(n / TARGET_BUCKETS))
        basis = "positions"
    buckets = max(1, math.floor((end - start) / width) + 1)
    return Timeline(x=x, basis=basis, start=start, end=end, width=width, buckets=buckets)


def _forward_fill(ts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    mask = np.isnan(ts)
    if not mask.any():
        return ts
    idx = np.where(~mask, np.arange(len(ts)), 0)
    np.maximum.accumulate(idx, out=idx)
    filled = ts[idx]
    # Leading records with no timestamp take the first known one.
    first_known = np.flatnonzero(~mask)
    if len(first_known):
        filled[: first_known[0]] = ts[first_known[0]]
    return filled


@dataclass(frozen=True, slots=True)
class Burst:
    service: str
    level: str  # "error" | "warning"
    start: float
    end: float
    count: int
    baseline: float
    z: float


def error_bursts(table: LogTable, timeline: Timeline) -> list[Burst]:
    """Buckets where a service's error (or warning) count jumps far above its own baseline."""
    cols = table.columns()
    if not len(cols.cluster):
        return []
    bucket = timeline.bucket_of(timeline.x)
    out: list[Burst] = []
    for level, low, high in (("error", ERROR, 255), ("warning", WARN, ERROR - 1)):
        mask = (cols.severity >= low) & (cols.severity <= high)
        if np.count_nonzero(mask) < MIN_BURST_COUNT:
            continue  # no service can reach MIN_BURST_COUNT records at this level
        # records per (service, bucket): one bincount over the flattened cell index (np.add.at is slow)
        cells = cols.service[mask].astype(np.int64) * timeline.buckets + bucket[mask]
        size = len(table.services) * timeline.buckets
        per = (
            np.bincount(cells, minlength=size)
            .astype(np.int64, copy=False)
            .reshape(len(table.services), timeline.buckets)
        )
        totals = per.sum(axis=1).tolist()  # (one call, not one per service)
        for sid, counts in enumerate(per):
            if totals[sid] < MIN_BURST_COUNT:
                continue
            out.extend(_bursts_in(counts, service=table.services[sid], level=level, timeline=timeline))
    return out


def _bursts_in(counts: npt.NDArray[np.int64], *, service: str, level: str, timeline: Timeline) -> list[Burst]:
    if int(counts.max()) < MIN_BURST_COUNT:
        return []  # no bucket can be hot (it needs MIN_BURST_COUNT records): spare the medians
    values = counts.astype(np.float64)
    baseline = float(np.median(values))
    mad = float(np.median(np.abs(values - baseline))) * 1.4826
    # Poisson noise around the baseline plus the data's own spread; +1 keeps quiet series from alarming on 1-2.
    scale = math.sqrt(baseline + mad * mad + 1.0)
    z = (values - baseline) / scale
    hot = (z >= BURST_Z) & (values >= MIN_BURST_COUNT)
    if hot.all() or not hot.any():
        return []
    bursts: list[Burst] = []
    idx = np.flatnonzero(hot)
    run_start = prev = int(idx[0])
    for i in [*idx[1:].tolist(), None]:
        if i is not None and i - prev <= 2:  # bridge one quiet bucket
            prev = i
            continue
        span = slice(run_start, prev + 1)
        bursts.append(
            Burst(
                service=service,
                level=level,
                start=timeline.start + run_start * timeline.width,
                end=timeline.start + (prev + 1) * timeline.width,
                count=int(counts[span].sum()),
                baseline=baseline,
                z=float(z[span].max()),
            )
        )
        if i is not None:
            run_start = prev = i
    return bursts


WINDOW_LEAD_BUCKETS = 5


def window_counts(
    table: LogTable, timeline: Timeline, *, start: float | None
) -> dict[int, dict[int, int]] | None:
    """Warning-or-worse records per template cluster and service from a little before ``start`` on
    (None without a start: then the whole stream is the window)."""
    if start is None:
        return None
    cols = table.columns()
    mask = (timeline.x >= start - WINDOW_LEAD_BUCKETS * timeline.width) & (cols.severity >= WARN)
    keys = cols.cluster[mask].astype(np.int64) * 65536 + cols.service[mask].astype(np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    out: dict[int, dict[int, int]] = {}
    for key, count in zip(unique.tolist(), counts.tolist(), strict=True):
        out.setdefault(key // 65536, {})[key % 65536] = count
    return out


def incident_start(candidates: Sequence[float]) -> float | None:
    finite = [c for c in candidates if math.isfinite(c)]
    return min(finite) if finite else None


def detect_log_anomalies(
    table: LogTable, timeline: Timeline, *, bursts: Sequence[Burst], start: float | None
) -> list[Anomaly]:
    anomalies = [_burst_anomaly(b, timeline) for b in bursts]
    anomalies += _window_templates(table, timeline, start=start)
    anomalies += _rare_errors(table, timeline)
    anomalies += _exception_groups(table, timeline, start=start)
    anomalies += _crashes(table, timeline)
    anomalies += _version_changes(table, timeline, start=start)
    anomalies.sort(key=lambda a: -a.score)
    return anomalies


def _burst_anomaly(burst: Burst, timeline: Timeline) -> Anomaly:
    excess = burst.count - burst.baseline
    return Anomaly(
        kind="error_burst",
        source="logs",
        subject=burst.service,
        service=None if burst.service == NO_SERVICE else burst.service,
        start=timeline.to_time(burst.start),
        end=timeline.to_time(burst.end),
        score=round(
            min(burst.z, 50.0) / 5.0
            + math.log1p(max(excess, 0.0)) * (1.0 if burst.level == "error" else 0.5),
            3,
        ),
        direction="up",
        magnitude=float(burst.count),
        evidence=Evidence(
            notes=[f"{burst.count} {burst.level}s vs a baseline of {burst.baseline:g} per bucket"]
        ),
        description=(
            f"{burst.level} burst in {burst.service}: {burst.count} {burst.level} records "
            f"(robust z {burst.z:.1f}) {_where(timeline, burst.start, burst.end)}"
        ),
    )


def _where(timeline: Timeline, start: float, end: float) -> str:
    if timeline.basis == "timestamps":
        a = datetime.fromtimestamp(start, UTC).strftime("%H:%M:%S")
        b = datetime.fromtimestamp(end, UTC).strftime("%H:%M:%S")
        return f"from {a} to {b} UTC"
    return f"around records {int(start) + 1}-{int(end)}"


def _window_templates(table: LogTable, timeline: Timeline, *, start: float | None) -> list[Anomaly]:
    """New templates after the incident start, and templates whose share of the stream shifted."""
    if start is None:
        return []
    cols = table.columns()
    after_mask = timeline.x >= start
    n_after = int(after_mask.sum())
    n_before = len(after_mask) - n_after
    # A baseline too short to say what is normal tells nothing about what is new.
    if n_before < 20 or n_after < 5 or (start - timeline.start) < 0.15 * (timeline.end - timeline.start):
        return []
    n_clusters = int(cols.cluster.max()) + 1
    before = np.bincount(cols.cluster[~after_mask], minlength=n_clusters)
    after = np.bincount(cols.cluster[after_mask], minlength=n_clusters)
    first_x = np.full(n_clusters, np.inf)
    last_x = np.full(n_clusters, -np.inf)
    np.minimum.at(first_x, cols.cluster, timeline.x)
    np.maximum.at(last_x, cols.cluster, timeline.x)
    tested = int(((before + after) >= 5).sum()) or 1
    out: list[Anomaly] = []
    for cid in np.flatnonzero((before + after) > 0).tolist():
        a, b = int(before[cid]), int(after[cid])
        stats = table.clusters[cid]
        tid = table.miner.template_id(cid)
        template = table.miner.template(cid)
        example = stats.examples[:1]
        service = _main_service(table, cid)
        if a == 0 and b > 0:
            weight = 2.0 if stats.severity >= ERROR else 1.2 if stats.severity >= WARN else 0.6
            score = weight * math.log1p(b)
            if score < 1.0:
                continue
            out.append(
                Anomaly(
                    kind="new_template",
                    source="logs",
                    subject=tid,
                    service=service,
                    start=timeline.to_time(float(first_x[cid])),
                    end=timeline.to_time(float(last_x[cid])),
                    score=round(score, 3),
                    direction="up",
                    magnitude=float(b),
                    evidence=Evidence(template_ids=[tid], lines=example),
                    description=f"new since the incident start ({b}x): {template}",
                )
            )
            continue
        if a + b < 5:
            continue
        p_value, ratio = _share_shift(a, b, n_before, n_after)
        if p_value * tested >= SHIFT_ALPHA or not (ratio >= SHIFT_MIN_RATIO or ratio <= 1 / SHIFT_MIN_RATIO):
            continue
        direction = "up" if ratio > 1 else "down"
        if direction == "down" and stats.severity >= WARN:
            continue  # fewer errors is recovery, not a symptom
        score = min(-math.log10(max(p_value * tested, 1e-300)), 60.0) / 10.0 + abs(math.log2(ratio)) / 2.0
        if stats.severity >= ERROR:
            score *= 1.5
        out.append(
            Anomaly(
                kind="frequency_shift",
                source="logs",
                subject=tid,
                service=service,
                start=timeline.to_time(start),
                end=timeline.to_time(timeline.end),
                score=round(score, 3),
                direction=direction,
                magnitude=round(ratio, 3),
                evidence=Evidence(
                    template_ids=[tid],
                    lines=example,
                    notes=[
                        f"{a} before vs {b} after the incident start (share x{ratio:.1f}, p={p_value:.1e})"
                    ],
                ),
                description=f"rate {'rose' if direction == 'up' else 'fell'} x{ratio:.1f}: {template}",
            )
        )
    return out


def _share_shift(a: int, b: int, n_before: int, n_after: int) -> tuple[float, float]:
    """G-test of independence on [[a, n_before-a], [b, n_after-b]]; returns (p, ratio of shares)."""
    table = np.array([[a, n_before - a], [b, n_after - b]], dtype=np.float64)
    total = table.sum()
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(table > 0, table * np.log(table / expected), 0.0)
    g = 2.0 * float(terms.sum())
    p = math.erfc(math.sqrt(max(g, 0.0) / 2.0))  # chi-square with one degree of freedom
    share_before = (a + 0.5) / (n_before + 1.0)
    share_after = (b + 0.5) / (n_after + 1.0)
    return p, share_after / share_before


def _rare_errors(table: LogTable, timeline: Timeline) -> list[Anomaly]:
    n = len(table)
    limit = max(3, int(n * 0.001))
    out: list[Anomaly] = []
    for cid, stats in table.clusters.items():
        if stats.severity < ERROR or stats.count > limit:
            continue
        tid = table.miner.template_id(cid)
        out.append(
            Anomaly(
                kind="rare_error",
                source="logs",
                subject=tid,
                service=_main_service(table, cid),
                start=timeline.to_time(stats.first_ts) if math.isfinite(stats.first_ts) else None,
                end=timeline.to_time(stats.last_ts) if math.isfinite(stats.last_ts) else None,
                score=round(0.8 + (1.0 if stats.severity >= int(Severity.FATAL) else 0.0), 3),
                direction="up",
                magnitude=float(stats.count),
                evidence=Evidence(template_ids=[tid], lines=stats.examples[:1]),
                description=f"rare error ({stats.count}x): {table.miner.template(cid)}",
            )
        )
    out.sort(key=lambda a: (-a.score, a.magnitude or 0))
    return out[:15]


def _exception_groups(table: LogTable, timeline: Timeline, *, start: float | None) -> list[Anomaly]:
    out: list[Anomaly] = []
    for group in table.exceptions.values():
        service_id, _ = group.services.most_common(1)[0]
        service = table.services[service_id]
        fresh = start is not None and math.isfinite(group.first_ts) and group.first_ts >= start
        score = math.log1p(group.count) * (1.5 if fresh else 1.0) + 0.5
        tids = [table.miner.template_id(cid) for cid, _ in group.clusters.most_common(3)]
        frames = " > ".join(group.info.frames)
        out.append(
            Anomaly(
                kind="exception_group",
                source="logs",
                subject=group.info.type,
                service=None if service == NO_SERVICE else service,
                start=timeline.to_time(group.first_ts) if math.isfinite(group.first_ts) else None,
                end=timeline.to_time(group.last_ts) if math.isfinite(group.last_ts) else None,
                score=round(score, 3),
                direction="up",
                magnitude=float(group.count),
                evidence=Evidence(
                    template_ids=tids,
                    lines=[group.example] if group.example else [],
                    notes=[f"top frames: {frames}"] if frames else [],
                ),
                description=f"{group.info.type} x{group.count} in {service}"
                + (f" at {frames}" if frames else ""),
            )
        )
    out.sort(key=lambda a: -a.score)
    return out[:20]


# The crash signatures' patterns, each with literals one of which any text it matches contains (empty: none
# proven); scanning for them first spares most texts the case-insensitive alternations.
_CRASH_SCREEN = tuple(
    (name, pattern, () if pattern.flags & re.VERBOSE else required_literals(pattern.pattern))
    for name, pattern in CRASH_PATTERNS
)


@lru_cache(maxsize=4096)
def _crash_kind(text: str) -> str | None:
    """:func:`core.stacktraces.crash_signature`, with each pattern screened by its literals first. Kept
    per text: templates and their examples come back request after request."""
    folded: str | None = None
    for name, pattern, literals in _CRASH_SCREEN:
        if literals:
            if folded is None:
                folded = ignorecase_fold(text)
            if not any(map(folded.__contains__, literals)):
                continue
        if pattern.search(text):
            return name
    return None


def _crashes(table: LogTable, timeline: Timeline) -> list[Anomaly]:
    per_service: dict[tuple[str, str], list[int]] = {}
    for cid, stats in table.clusters.items():
        text = table.miner.template(cid)
        kind = _crash_kind(text) or (_crash_kind(stats.examples[0].text) if stats.examples else None)
        if kind is None:
            continue
        for sid, _count in stats.services.items():
            per_service.setdefault((table.services[sid], kind), []).append(cid)
    out: list[Anomaly] = []
    for (service, kind), cids in per_service.items():
        sid = table.service_id(service)
        count = sum(table.clusters[c].services[sid] for c in cids)
        if kind in ("restart", "shutdown") and count < 2:
            continue  # one start-up line is a normal log, not a restart signature
        severe = kind in ("oom_killed", "crash_loop", "panic", "exit")
        score = (2.5 if severe else 1.0) + math.log1p(count) * (1.0 if severe else 0.5)
        first = min(table.clusters[c].first_ts for c in cids)
        last = max(table.clusters[c].last_ts for c in cids)
        tids = [table.miner.template_id(c) for c in cids[:5]]
        lines = [table.clusters[c].examples[0] for c in cids[:3] if table.clusters[c].examples]
        out.append(
            Anomaly(
                kind="restart",
                source="logs",
                subject=service,
                service=None if service == NO_SERVICE else service,
                start=timeline.to_time(first) if math.isfinite(first) else None,
                end=timeline.to_time(last) if math.isfinite(last) else None,
                score=round(score, 3),
                direction="up",
                magnitude=float(count),
                evidence=Evidence(template_ids=tids, lines=lines, notes=[f"signature: {kind}"]),
                description=f"{kind.replace('_', ' ')} signature in {service} ({count}x)",
            )
        )
    return out


DEPLOY_LEAD_SECONDS = 1800.0
DEPLOY_LAG_SECONDS = 300.0


def _version_changes(table: LogTable, timeline: Timeline, *, start: float | None) -> list[Anomaly]:
    """A service whose logs start reporting a new build shortly before (or just after) the incident start."""
    per_service: dict[int, list[tuple[float, int, str, int]]] = {}
    for (sid, _), seen in table.versions.items():
        moment = seen.first_ts if timeline.basis == "timestamps" else float(seen.first_pos)
        per_service.setdefault(sid, []).append((moment, seen.first_pos, seen.value, seen.count))
    out: list[Anomaly] = []
    for sid, seen_list in per_service.items():
        if len(seen_list) < 2:
            continue
        seen_list.sort()
        (_, _, old, _), (new_at, _, new, count) = seen_list[-2], seen_list[-1]
        if not math.isfinite(new_at) or new_at <= timeline.start:
            continue
        near = start is not None and start - DEPLOY_LEAD_SECONDS <= new_at <= start + DEPLOY_LAG_SECONDS
        if timeline.basis != "timestamps":
            near = start is not None and abs(new_at - start) <= 10 * timeline.width
        service = table.services[sid]
        score = (6.0 if near else 2.0) + math.log1p(count) * 0.2
        when = ""
        if start is not None and timeline.basis == "timestamps":
            delta = start - new_at
            when = f", {abs(delta):.0f} s {'before' if delta >= 0 else 'after'} the incident start"
        out.append(
            Anomaly(
                kind="version_change",
                source="logs",
                subject=service,
                service=None if service == NO_SERVICE else service,
                start=timeline.to_time(new_at),
                end=timeline.to_time(new_at),
                score=round(score, 3),
                direction="none",
                evidence=Evidence(notes=[f"version {old} → {new}" + when]),
                description=f"{service} started running version {new} (was {old}){when}",
            )
        )
    return out


def _main_service(table: LogTable, cluster: int) -> str | None:
    services = table.clusters[cluster].services
    if not services:
        return None
    sid, _ = services.most_common(1)[0]
    name = table.services[sid]
    return None if name == NO_SERVICE else name
