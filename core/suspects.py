"""Rank suspects — services, pods/hosts, components and outside dependencies — by the evidence against them.

In a microservice incident the loudest service is often a victim: its errors are about calling something
else. The ranking therefore weighs, per service: its share of the incident's errors, how early it deviated,
whether its own resources (metrics) moved, whether other services' errors name it, crash signatures in its
own logs, and — against it — how much of its own error volume blames another service.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.logtable import NO_SERVICE, LogTable
from core.models import Anomaly, MetricSeries, Severity, Suspect

ERROR = int(Severity.ERROR)
WARN = int(Severity.WARN)

_VICTIM = re.compile(
    r"timed? ?out|timeout|deadline exceeded|connection refused|econnrefused|econnreset|reset by peer|"
    r"upstream|\b50[234]\b|service unavailable|bad gateway|gateway time|failed to (?:call|connect|reach|fetch)|"
    r"error calling|call to|request to|circuit ?breaker|no healthy|could not connect|unable to connect|"
    r"i/o timeout|dial tcp|remote end closed|connection (?:closed|aborted|error)|retrying|"
    r"unavailable|cannot reach|not reachable|downstream|dependency",
    re.I,
)
_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]+@)?([A-Za-z0-9_.-]+)")
_HOST_PORT = re.compile(r"(?<![\w./-])([A-Za-z][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*):(\d{2,5})\b")
_NAMED_PEER = re.compile(
    r"(?:connect(?:ing|ion)? to|calling|call to|request to|upstream|host|server|peer|backend|lookup)"
    r"[\s=:\"'\[(]+([A-Za-z][A-Za-z0-9_.-]{2,})",
    re.I,
)
_PEER_STOP = {
    "localhost", "the", "server", "host", "upstream", "remote", "backend", "service", "database", "http",
    "https", "tcp", "udp", "unix", "null", "none", "unknown", "failed", "timeout", "closed", "error", "peer",
    "response", "request", "port", "address", "sending", "reading", "prematurely", "while", "connection",
    "version", "status", "default", "name", "name_resolution", "cluster", "svc",
}  # fmt: skip
_SVC_SUFFIX = re.compile(r"(?:\.[a-z0-9-]+)?\.svc(?:\.cluster\.local)?$|-(?:svc|service)$")
_SERVICE_LABELS = ("service", "service_name", "app", "job", "container", "workload", "deployment", "pod")


@dataclass(slots=True)
class _Facts:
    errors: int = 0
    warnings: int = 0
    victim_errors: int = 0
    first_deviation: float = math.inf
    resources: float = 0.0
    resource_series: list[str] = field(default_factory=list)
    crash: float = 0.0
    crash_kinds: set[str] = field(default_factory=set)
    mentioned_by: Counter[str] = field(default_factory=Counter)
    blames: Counter[str] = field(default_factory=Counter)


def rank_suspects(
    table: LogTable,
    *,
    anomalies: Sequence[Anomaly],
    series: Sequence[MetricSeries],
    start: float | None,
    focus_services: Sequence[str] = (),
    limit: int = 8,
) -> list[Suspect]:
    services = [s for s in table.services if s != NO_SERVICE]
    facts: dict[str, _Facts] = defaultdict(_Facts)
    dependencies: Counter[str] = Counter()
    dependency_blamers: dict[str, Counter[str]] = defaultdict(Counter)
    patterns = {s: _service_pattern(s) for s in services}

    # Errors per service, who they blame, and what they name.
    for cid, stats in table.clusters.items():
        if stats.severity < WARN:
            continue
        texts = [table.miner.template(cid), *(e.text.split("\n", 1)[0] for e in stats.examples)]
        blob = "\n".join(texts)
        victim = _VICTIM.search(blob) is not None
        named = {s for s in services if patterns[s].search(blob)}
        peers = _peers(blob)
        for sid, count in stats.services.items():
            name = table.services[sid]
            if name == NO_SERVICE:
                owner = None
            else:
                owner = facts[name]
                if stats.severity >= ERROR:
                    owner.errors += count
                else:
                    owner.warnings += count
            weight = count if stats.severity >= ERROR else count * 0.3
            targets = {s for s in named if s != name}
            for target in targets:
                facts[target].mentioned_by[name] += round(weight)
            unmatched = {p for p in peers if _peer_service(p, services) is None and p != name}
            for peer in unmatched:
                dependencies[peer] += round(weight)
                dependency_blamers[peer][name] += round(weight)
            if owner is not None and victim and (targets or unmatched):
                owner.victim_errors += count if stats.severity >= ERROR else 0
                for target in targets | unmatched:
                    owner.blames[target] += count

    # When each service first deviated, and whether its own resources or process moved.
    for anomaly in anomalies:
        owner_name: str | None = anomaly.service
        if anomaly.source == "metrics":
            owner_name = _series_service(anomaly.subject, series, services)
            if owner_name is not None:
                facts[owner_name].resources += anomaly.score
                facts[owner_name].resource_series.append(anomaly.subject)
        if owner_name is None or owner_name not in services:
            continue
        name = owner_name
        if anomaly.kind == "restart":
            note = anomaly.evidence.notes[0] if anomaly.evidence.notes else ""
            severe = any(k in note for k in ("oom", "crash_loop", "panic", "exit"))
            if severe or (anomaly.magnitude or 0) >= 3:
                facts[name].crash = max(facts[name].crash, anomaly.score)
                facts[name].crash_kinds.add(note.removeprefix("signature: "))
        deviates = anomaly.kind in ("error_burst", "restart", "spike", "dip", "level_shift", "threshold") or (
            anomaly.kind in ("new_template", "exception_group") and anomaly.score >= 1.5
        )
        if deviates and anomaly.start is not None:
            t = anomaly.start.timestamp()
            if start is None or t >= start - 3600:
                facts[name].first_deviation = min(facts[name].first_deviation, t)

    total_errors = sum(f.errors for f in facts.values()) or 1
    total_mentions = sum(sum(f.mentioned_by.values()) for f in facts.values()) + sum(dependencies.values())
    total_mentions = total_mentions or 1
    max_resources = max((f.resources for f in facts.values()), default=0.0) or 1.0
    max_crash = max((f.crash for f in facts.values()), default=0.0) or 1.0
    firsts = sorted(f.first_deviation for f in facts.values() if math.isfinite(f.first_deviation))
    t0 = firsts[0] if firsts else math.inf
    spread = (firsts[-1] - t0) if len(firsts) > 1 else 0.0
    tau = max(60.0, spread / 3.0)

    out: list[Suspect] = []
    for name in services:
        f = facts.get(name)
        if f is None:
            continue
        share = f.errors / total_errors
        mentioned = sum(f.mentioned_by.values()) / total_mentions
        earliness = math.exp(-(f.first_deviation - t0) / tau) if math.isfinite(f.first_deviation) else 0.0
        resources = f.resources / max_resources
        crash = f.crash / max_crash
        victimness = f.victim_errors / f.errors if f.errors else 0.0
        score = (
            2.0 * share
            + 1.5 * earliness
            + 2.5 * resources
            + 3.5 * min(1.0, 2.0 * mentioned)
            + 2.0 * crash
            - 2.0 * victimness * (1.0 - crash)
        )
        if name in focus_services:
            score += 0.5
        if score <= 0.05 or (
            f.errors == 0 and f.warnings == 0 and resources == 0 and crash == 0 and mentioned == 0
        ):
            continue
        reason = _reason(name, f, share=share, earliness=earliness, t0=t0)
        out.append(Suspect(name=name, kind="service", score=round(max(score, 0.0), 3), reason=reason))

    for peer, weight in dependencies.most_common(10):
        share = weight / total_mentions
        if share < 0.05:
            continue
        blamers = ", ".join(n for n, _ in dependency_blamers[peer].most_common(3))
        out.append(
            Suspect(
                name=peer,
                kind="dependency",
                score=round(3.5 * min(1.0, 2.0 * share) + 0.5, 3),
                reason=f"errors in {blamers} name {peer} ({weight} error records); it has no logs of its own here",
            )
        )

    out.sort(key=lambda s: -s.score)
    out = out[:limit]
    pod = _concentrated_pod(table, out[0].name) if out and out[0].kind == "service" else None
    if pod is not None:
        where, fraction = pod
        out.insert(
            1,
            Suspect(
                name=where,
                kind="pod",
                score=round(out[0].score * 0.8, 3),
                reason=f"{fraction:.0%} of {out[0].name}'s errors come from {where}",
            ),
        )
    if not out:
        out = _component_suspects(table)
    return out[:limit]


def _reason(name: str, f: _Facts, *, share: float, earliness: float, t0: float) -> str:
    parts: list[str] = []
    if f.crash_kinds:
        parts.append(f"its own process shows {', '.join(sorted(f.crash_kinds)).replace('_', ' ')}")
    if f.resource_series:
        parts.append(f"its own metrics moved ({', '.join(sorted(set(f.resource_series))[:2])})")
    if f.mentioned_by:
        who = ", ".join(n for n, _ in f.mentioned_by.most_common(3))
        parts.append(f"errors in {who} name it ({sum(f.mentioned_by.values())} records)")
    if math.isfinite(f.first_deviation) and earliness >= 0.99:
        parts.append(
            f"it deviated first ({datetime.fromtimestamp(f.first_deviation, UTC).strftime('%H:%M:%S')})"
        )
    if f.errors:
        parts.append(f"{f.errors} error records ({share:.0%} of all)")
    if f.errors and f.victim_errors / f.errors >= 0.5 and f.blames:
        target = f.blames.most_common(1)[0][0]
        parts.append(f"but most of its errors are about calling {target}")
    return f"{name}: " + "; ".join(parts) if parts else f"{name}: warnings only"


def _service_pattern(service: str) -> re.Pattern[str]:
    name = re.escape(service.lower())
    return re.compile(
        rf"(?<![A-Za-z0-9_-]){name}(?:-svc|-service|\.[a-z0-9-]+\.svc(?:\.cluster\.local)?|\.svc)?(?![A-Za-z0-9_-])",
        re.I,
    )


def _peers(text: str) -> set[str]:
    found: set[str] = set()
    for regex in (_URL_HOST, _HOST_PORT, _NAMED_PEER):
        for match in regex.finditer(text):
            peer = match.group(1).strip(".-_").lower()
            if peer in _PEER_STOP or len(peer) < 3 or peer.replace(".", "").isdigit() or peer.startswith("<"):
                continue
            peer = _SVC_SUFFIX.sub("", peer)
            if peer and peer not in _PEER_STOP and not re.fullmatch(r"[\d.]+", peer):
                found.add(peer)
    return found


def _peer_service(peer: str, services: Sequence[str]) -> str | None:
    base = _SVC_SUFFIX.sub("", peer.lower())
    for service in services:
        if base == service.lower() or base.split(".", 1)[0] == service.lower():
            return service
    return None


def _series_service(subject: str, series: Sequence[MetricSeries], services: Sequence[str]) -> str | None:
    """The service a metric series belongs to: from its labels, its name, or its file name."""
    match = next((s for s in series if s.key == subject), None)
    candidates: list[str] = []
    if match is not None:
        candidates += [match.labels[k] for k in _SERVICE_LABELS if k in match.labels]
        candidates += list(match.labels.values())
        candidates.append(match.name)
        candidates.append(re.sub(r".*/", "", match.source))
    else:
        candidates.append(subject)
    lowered = [c.lower() for c in candidates]
    best: str | None = None
    for service in sorted(services, key=len, reverse=True):  # longest first: "payments-db" before "payments"
        pattern = _service_pattern(service)
        if any(c == service.lower() or pattern.search(c) for c in lowered):
            best = service
            break
    if best is None and len(services) == 1 and match is not None and not match.labels:
        best = services[0]
    return best


def _concentrated_pod(table: LogTable, service: str) -> tuple[str, float] | None:
    """The pod/host that holds most of a service's errors, when the service runs on several."""
    sid = table.service_id(service)
    hosts = table.hosts.get(sid)
    errors = table.error_hosts.get(sid)
    if not hosts or len(hosts) < 2 or not errors:
        return None
    total = sum(errors.values())
    where, count = errors.most_common(1)[0]
    fraction = count / total
    if total < 5 or fraction < 0.6:
        return None
    return where, fraction


def _component_suspects(table: LogTable) -> list[Suspect]:
    cols = table.columns()
    errs = cols.severity >= ERROR
    if not errs.any():
        return []
    counts = Counter(cols.component[errs].tolist())
    total = sum(counts.values())
    out: list[Suspect] = []
    for cid, count in counts.most_common(5):
        name = table.components[cid]
        if name == NO_SERVICE:
            continue
        out.append(
            Suspect(
                name=name,
                kind="component",
                score=round(3.0 * count / total, 3),
                reason=f"{name}: {count} error records ({count / total:.0%} of all)",
            )
        )
    return out
