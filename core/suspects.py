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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from core.knowledge_base import ignorecase_fold
from core.logtable import NO_SERVICE, LogTable
from core.models import Anomaly, MetricSeries, Severity, Suspect

ERROR = int(Severity.ERROR)
WARN = int(Severity.WARN)

_VICTIM = re.compile(
    r"timed? ?out|timeout|deadline exceeded|connection refused|econnrefused|econnreset|reset by peer|"
    r"upstream|\b50[234]\b|service unavailable|bad gateway|gateway time|failed to (?:call|connect|reach|fetch)|"
    r"error calling|call to|request to|circuit ?breaker|no healthy|could not connect|unable to connect|"
    r"i/o timeout|dial tcp|remote end closed|connection (?:closed|aborted|error)|retrying|"
    r"unavailable|cannot reach|not reachable|downstream|dependency|"
    r"x509|certificate (?:has )?expired|certificate verify failed|handshake|pkix|ssl|tls",
    re.I,
)
# Proxies and gateways report their upstreams' failures: their errors are never about themselves alone.
_PROXY = re.compile(
    r"nginx|envoy|haproxy|ingress|gateway|traefik|proxy|(?:^|-)lb(?:$|-)|edge|istio|kong", re.I
)
NAMING_ONLY_BLAME = (
    0.5  # share of an error passed on when it names a peer without saying it failed calling it
)
_URL_HOST = re.compile(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]+@)?([A-Za-z0-9_.-]+)")
_HOST_PORT = re.compile(r"(?<![\w./-])([A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*):(\d{2,5})\b")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_EXCEPTION_NAME = re.compile(r"(?:Exception|Error|Throwable)$")
_ATTRIBUTES = re.compile(r" \{[^{}]*\}$")
_DNS_FAILURE = re.compile(
    r"no such host|name resolution|Name or service not known|NXDOMAIN|SERVFAIL|could not resolve|"
    r"UnknownHostException|getaddrinfo|ENOTFOUND|EAI_AGAIN|lookup \S+ (?:on \S+)?: ?(?:i/o timeout|server misbehaving)",
    re.I,
)
_DNS_LOOKUP = re.compile(r"\blookup \S+ (?=on )")
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_SOURCE_FILE = re.compile(r"\.(?:java|kt|scala|py|go|js|ts|rb|cs|cpp|c|h|rs|php|ex|exs|erl)$")
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

# Cheap necessary conditions, checked on :func:`~core.knowledge_base.ignorecase_fold`-ed text before the regexes above scan it (an
# alternation under re.IGNORECASE is tried at every position, which is slow): each alternative of the regex
# contains one of its anchors, so a text with none of them cannot match. tests/unit/test_suspects_prefilter.py
# holds them to that.
_VICTIM_ANCHORS = (
    "time", "deadline exceeded", "connect", "econn", "reset by peer", "upstream", "50", "unavailable",
    "gateway", "failed to ", "calling", "call to", "request to", "circuit", "no healthy", "dial tcp",
    "remote end closed", "retrying", "cannot reach", "not reachable", "downstream", "dependency", "x509",
    "certificate", "handshake", "pkix", "ssl", "tls",
)  # fmt: skip
_NAMED_PEER_ANCHORS = (
    "connect", "calling", "call to", "request to", "upstream", "host", "server", "peer", "backend", "lookup",
)  # fmt: skip
_COLON_DIGIT = re.compile(r":\d")  # every _HOST_PORT match holds one; a literal start makes it a fast scan


def _mentions_any(folded: str, anchors: Sequence[str]) -> bool:
    return any(map(folded.__contains__, anchors))


@dataclass(slots=True)
class _Facts:
    errors: int = 0
    warnings: int = 0
    victim_errors: int = 0
    victim_weight: float = 0.0
    first_deviation: float = math.inf
    resources: float = 0.0
    resource_series: list[str] = field(default_factory=list)
    crash: float = 0.0
    crash_kinds: set[str] = field(default_factory=set)
    deployed: str | None = None
    mentioned_by: Counter[str] = field(default_factory=Counter)
    blames: Counter[str] = field(default_factory=Counter)


def rank_suspects(
    table: LogTable,
    *,
    anomalies: Sequence[Anomaly],
    series: Sequence[MetricSeries],
    start: float | None,
    focus_services: Sequence[str] = (),
    window: Mapping[int, Mapping[int, int]] | None = None,
    limit: int = 8,
) -> list[Suspect]:
    """Suspects, best first. ``window`` (cluster → service → records) counts only the records of the
    incident window; without it every record counts. Hours of background errors before an incident say
    little about what broke in it."""
    services = [s for s in table.services if s != NO_SERVICE]
    facts: dict[str, _Facts] = defaultdict(_Facts)
    dependencies: Counter[str] = Counter()
    dependency_blamers: dict[str, Counter[str]] = defaultdict(Counter)
    patterns = {s: _service_pattern(s) for s in services}
    known = tuple(services)
    dns_service = next((s for s in services if "dns" in s.lower()), None)

    # Errors per service, who they blame, and what they name.
    for cid, stats in table.clusters.items():
        if stats.severity < WARN:
            continue
        texts = [table.miner.template(cid)]
        fields: list[str] = []
        for example in stats.examples:
            lines = example.text.split("\n")
            head = _ATTRIBUTES.search(lines[0])
            texts.append(lines[0][: head.start()] if head else lines[0])
            if head:
                fields.append(head.group(0))
            if len(lines) > 1:
                texts.append(lines[-1])
        victim, named, peers = _read_blob(
            "\n".join(texts), fields="\n".join(fields), services=known, dns_service=dns_service
        )
        counts = stats.services if window is None else window.get(cid, {})
        for sid, count in counts.items():
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
            for target in sorted(targets):
                facts[target].mentioned_by[name] += round(weight)
            unmatched = {p for p in peers if p != name}
            for peer in sorted(unmatched):
                dependencies[peer] += round(weight)
                dependency_blamers[peer][name] += round(weight)
            if owner is not None and (targets or unmatched):
                strength = 1.0 if victim or _PROXY.search(name) else NAMING_ONLY_BLAME
                owner.victim_errors += count if stats.severity >= ERROR and strength == 1.0 else 0
                owner.victim_weight += strength * (count if stats.severity >= ERROR else count / 3.0)
                for target in sorted(targets | unmatched):
                    owner.blames[target] += count

    # When each service first deviated, and whether its own resources or process moved.
    for anomaly in anomalies:
        owner_name: str | None = anomaly.service
        if anomaly.source == "metrics":
            owner_name = _series_service(anomaly.subject, series, patterns)
            if owner_name is not None:
                facts[owner_name].resources += anomaly.score
                facts[owner_name].resource_series.append(anomaly.subject)
        if owner_name is None or owner_name not in services:
            continue
        name = owner_name
        if anomaly.kind == "version_change" and anomaly.score >= 5.0:
            facts[name].deployed = anomaly.description
        if anomaly.kind == "restart":
            note = anomaly.evidence.notes[0] if anomaly.evidence.notes else ""
            severe = any(k in note for k in ("oom", "crash_loop", "panic", "exit"))
            chronic = (
                start is not None and anomaly.start is not None and anomaly.start.timestamp() < start - 3600
            )
            if (severe or (anomaly.magnitude or 0) >= 3) and not chronic:
                # a crash signature present an hour before the incident is background, not its cause
                facts[name].crash = max(facts[name].crash, anomaly.score)
                facts[name].crash_kinds.add(note.removeprefix("signature: "))
        deviates = anomaly.kind in (
            "error_burst",
            "restart",
            "spike",
            "dip",
            "level_shift",
            "threshold",
            "version_change",
        ) or (anomaly.kind in ("new_template", "exception_group") and anomaly.score >= 1.5)
        if deviates and anomaly.start is not None:
            t = anomaly.start.timestamp()
            if start is None or t >= start - 3600:
                facts[name].first_deviation = min(facts[name].first_deviation, t)

    responsibility = _propagate_blame(facts, services=services, dependencies=list(dependencies))
    total_errors = sum(f.errors for f in facts.values()) or 1
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
        earliness = math.exp(-(f.first_deviation - t0) / tau) if math.isfinite(f.first_deviation) else 0.0
        resources = f.resources / max_resources
        crash = f.crash / max_crash
        score = (
            BLAME_WEIGHT * responsibility.get(name, 0.0)
            + 1.5 * earliness
            + 2.5 * resources
            + 2.0 * crash
            + (2.0 if f.deployed else 0.0)
        )
        if name in focus_services:
            score += 0.5
        if score <= 0.05 or (f.errors == 0 and f.warnings == 0 and resources == 0 and crash == 0):
            continue
        reason = _reason(name, f, share=share, earliness=earliness, t0=t0)
        out.append(Suspect(name=name, kind="service", score=round(score, 3), reason=reason))

    for peer, weight in dependencies.most_common(10):
        share = responsibility.get(peer, 0.0)
        if share < 0.05:
            continue
        blamers = ", ".join(n for n, _ in dependency_blamers[peer].most_common(3))
        out.append(
            Suspect(
                name=peer,
                kind="dependency",
                score=round(BLAME_WEIGHT * share + 0.5, 3),
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


BLAME_WEIGHT = 5.0
BLAME_ROUNDS = 6


def _propagate_blame(
    facts: dict[str, _Facts], *, services: Sequence[str], dependencies: Sequence[str]
) -> dict[str, float]:
    """Share of responsibility per service or dependency, after victims pass blame to what they name.

    Every service starts with its own error volume (warnings count a third). A service whose errors are
    mostly about calling something else (timeouts, refused connections, 5xx from upstream) keeps only the
    rest and passes that share on to the things it names, in proportion; a chain (edge → checkout →
    payments) ends at the service that blames no one. Returns shares summing to 1.
    """
    mass: dict[str, float] = {}
    keep: dict[str, float] = {}
    edges: dict[str, list[tuple[str, float]]] = {}
    for name in services:
        f = facts.get(name)
        if f is None:
            continue
        volume = f.errors + f.warnings / 3.0
        mass[name] = volume
        blamed = sum(f.blames.values())
        victim = min(1.0, f.victim_weight / volume) if volume else 0.0
        keep[name] = 1.0 - victim
        if blamed and victim:
            edges[name] = [(target, count / blamed) for target, count in f.blames.items()]
    for name in dependencies:
        mass.setdefault(name, 0.0)
        keep.setdefault(name, 1.0)
    total = sum(mass.values())
    if total <= 0:
        return {}
    for _ in range(BLAME_ROUNDS):
        moved = {name: value * keep.get(name, 1.0) for name, value in mass.items()}
        for source, targets in edges.items():
            passed = mass.get(source, 0.0) * (1.0 - keep[source])
            for target, fraction in targets:
                moved[target] = moved.get(target, 0.0) + passed * fraction
        mass = moved
    total = sum(mass.values()) or 1.0
    return {name: value / total for name, value in mass.items()}


def _reason(name: str, f: _Facts, *, share: float, earliness: float, t0: float) -> str:
    parts: list[str] = []
    if f.deployed:
        parts.append(f.deployed.removeprefix(name + " "))
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


@lru_cache(maxsize=2048)  # (keys hold a cluster's template and examples: a few kB at most each)
def _read_blob(
    blob: str, *, fields: str, services: tuple[str, ...], dns_service: str | None
) -> tuple[bool, frozenset[str], frozenset[str]]:
    """What the text of one template cluster says, as :func:`rank_suspects` reads it: whether it reads
    like a victim's error, the known ``services`` it names, and the peers it names that are none of them.
    A function of its arguments alone, kept for the templates that come back request after request."""
    victim = _mentions_any(ignorecase_fold(blob), _VICTIM_ANCHORS) and _VICTIM.search(blob) is not None
    named = {s for s in services if _service_pattern(s).search(blob)}
    peers: set[str] = set()
    if dns_service is not None and _DNS_FAILURE.search(blob):
        named.add(dns_service)  # a name that does not resolve is the resolver's failure, not the name's
    for peer in _peers(blob, fields=fields, dns_service=dns_service):
        service = _peer_service(peer, services)
        if service is None:
            peers.add(peer)
        else:
            named.add(service)
    return victim, frozenset(named), frozenset(peers)


@lru_cache(maxsize=1024)
def _service_pattern(service: str) -> re.Pattern[str]:
    name = re.escape(service.lower())
    return re.compile(
        rf"(?<![A-Za-z0-9_-]){name}(?:-svc|-service|\.[a-z0-9-]+\.svc(?:\.cluster\.local)?|\.svc)?(?![A-Za-z0-9_-])",
        re.I,
    )


def _peers(text: str, *, fields: str = "", dns_service: str | None = None) -> set[str]:
    """Names of things an error message says it was talking to: URL hosts, host:port pairs (IPs too), and
    hostname-like words after "connect to", "upstream", "host=", ... (plain words there are too ambiguous).
    Structured ``fields`` only contribute URL hosts. An address on port 53 is the DNS server: the service
    named like one (``dns_service``), when the data has it."""
    found: set[str] = set()
    if "lookup " in text:
        text = _DNS_LOOKUP.sub("lookup ", text)  # in "lookup X on DNS:53", X is not the one failing
    for regex, plain_words_ok, source in (
        (_URL_HOST, True, text + "\n" + fields),
        (_HOST_PORT, True, text),
        (_NAMED_PEER, False, text),
    ):
        if not _may_match(regex, source):
            continue
        for match in _named_peer_matches(source) if regex is _NAMED_PEER else regex.finditer(source):
            if regex is _HOST_PORT and match.group(2) == "53" and dns_service is not None:
                found.add(dns_service)
                continue
            peer = match.group(1).strip(".-_").lower()
            if peer in _PEER_STOP or len(peer) < 3 or peer.startswith("<"):
                continue
            if not plain_words_ok and not any(c in peer for c in "-."):
                continue
            peer = _SVC_SUFFIX.sub("", peer)
            if (
                peer
                and peer not in _PEER_STOP
                and _HOSTNAME.fullmatch(peer)
                and not _SOURCE_FILE.search(peer)
            ):
                if peer[0].isdigit() and not (regex is _HOST_PORT and _IPV4.fullmatch(peer)):
                    continue  # numbers, dates ("2026-03-10t14:23"), versions: only a full IPv4 counts
                found.add(peer)
    return found


def _named_peer_matches(text: str) -> Iterator[re.Match[str]]:
    """``_NAMED_PEER.finditer(text)``, trying the regex only where one of its keywords starts: every match
    starts with one (the regex opens with the alternation of them), and an alternation under re.IGNORECASE
    is otherwise tried at every position."""
    folded = ignorecase_fold(text)  # one character for one character: positions carry over
    starts: set[int] = set()
    for anchor in _NAMED_PEER_ANCHORS:
        at = folded.find(anchor)
        while at >= 0:
            starts.add(at)
            at = folded.find(anchor, at + 1)
    resume = 0
    for start in sorted(starts):
        if start < resume:
            continue
        match = _NAMED_PEER.match(text, start)
        if match is not None:
            yield match
            resume = match.end()


def _may_match(regex: re.Pattern[str], text: str) -> bool:
    """False only when ``regex`` (one of :func:`_peers`'s) cannot match ``text``."""
    if regex is _URL_HOST:
        return "://" in text
    if regex is _HOST_PORT:
        return _COLON_DIGIT.search(text) is not None
    if regex is _NAMED_PEER:
        return _mentions_any(ignorecase_fold(text), _NAMED_PEER_ANCHORS)
    return True


def _peer_service(peer: str, services: Sequence[str]) -> str | None:
    base = _SVC_SUFFIX.sub("", peer.lower())
    for service in services:
        if base == service.lower() or base.split(".", 1)[0] == service.lower():
            return service
    return None


def _series_service(
    subject: str, series: Sequence[MetricSeries], patterns: Mapping[str, re.Pattern[str]]
) -> str | None:
    """The service a metric series belongs to: from its labels, its name, or its file name.
    ``patterns`` maps each known service to its :func:`_service_pattern`."""
    services = list(patterns)
    if not services:
        return None  # nothing to attribute the series to
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
        pattern = patterns[service]
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
        if name == NO_SERVICE or _EXCEPTION_NAME.search(name):
            continue  # an exception class parsed as the logger says nothing about where it happened
        out.append(
            Suspect(
                name=name,
                kind="component",
                score=round(3.0 * count / total, 3),
                reason=f"{name}: {count} error records ({count / total:.0%} of all)",
            )
        )
    return out
