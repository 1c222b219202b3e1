"""A compact, columnar summary of a log stream, built one record at a time with bounded memory.

Every record costs a few bytes in typed arrays (time, template cluster, severity, service); text is kept only
as a handful of examples per template and per exception group. The anomaly detectors read this table.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.models import EvidenceLine, LogRecord, Severity
from core.normalize import workload_from_pod
from core.stacktraces import ExceptionInfo, exception_of
from core.templates import TemplateMiner

MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 500
MAX_EXCEPTION_GROUPS = 2000
NO_SERVICE = "(unknown)"
_WARN = int(Severity.WARN)
_ERROR = int(Severity.ERROR)
MAX_VERSIONS = 1000
MAX_ATTRIBUTE_CHARS = 300
# Structured fields that carry the running build; a new value at the incident start points to a deploy.
VERSION_KEYS = (
    "version", "service.version", "app.version", "app_version", "appVersion", "build", "build_version",
    "release", "git_sha", "git.commit", "commit", "revision", "image", "image_tag", "container.image.tag",
)  # fmt: skip
# Structured fields too routine to help explain an error.
_ROUTINE_ATTRIBUTES = frozenset(
    {"pid", "hostname", "host", "v", "time", "ts", "thread", "tid", "port", "node", "line", "file", "caller",
     "stream", "kind", "apiVersion", "count", "firstTimestamp", "lastTimestamp", "metadata.name",
     "metadata.namespace", "metadata.uid", "metadata.resourceVersion", "source.host"}
)  # fmt: skip


@dataclass(slots=True)
class ClusterStats:
    count: int = 0
    severity: int = 0
    first_ts: float = math.inf
    last_ts: float = -math.inf
    first_pos: int = 0
    examples: list[EvidenceLine] = field(default_factory=list)
    services: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True)
class VersionSeen:
    value: str
    first_ts: float
    first_pos: int
    count: int = 0


@dataclass(slots=True)
class ExceptionGroup:
    info: ExceptionInfo
    count: int = 0
    first_ts: float = math.inf
    last_ts: float = -math.inf
    first_pos: int = 0
    services: Counter[int] = field(default_factory=Counter)
    clusters: Counter[int] = field(default_factory=Counter)
    example: EvidenceLine | None = None


class LogTable:
    """Accumulates records; ``add`` is the hot path."""

    def __init__(self, miner: TemplateMiner | None = None) -> None:
        self.miner = miner if miner is not None else TemplateMiner()
        self.ts: array[float] = array("d")
        self.cluster: array[int] = array("i")
        self.severity: array[int] = array("B")
        self.service: array[int] = array("H")
        self.component: array[int] = array("H")
        self.services: list[str] = []
        self._service_index: dict[str, int] = {}
        self.components: list[str] = []
        self._component_index: dict[str, int] = {}
        self.clusters: dict[int, ClusterStats] = {}
        self.exceptions: dict[str, ExceptionGroup] = {}
        self.hosts: dict[int, Counter[str]] = {}
        self.error_hosts: dict[int, Counter[str]] = {}
        self.sources: Counter[str] = Counter()
        self.with_timestamp = 0
        self.versions: dict[tuple[int, str], VersionSeen] = {}

    def __len__(self) -> int:
        return len(self.cluster)

    def service_id(self, name: str | None) -> int:
        """The index of a service; pod and ReplicaSet names count as their workload."""
        key = name or NO_SERVICE
        index = self._service_index.get(key)
        if index is None:
            canonical = workload_from_pod(key, strip_ordinal=False) if name else key
            index = self._service_index.get(canonical)
            if index is None:
                index = len(self.services)
                self.services.append(canonical)
                self._service_index[canonical] = index
            self._service_index[key] = index
        return index

    def rename_service(self, old: str, new: str) -> None:
        """Call service ``old`` by the name ``new`` (which must not be in use)."""
        index = self._service_index[old]
        self.services[index] = new
        self._service_index[new] = index

    def component_id(self, name: str | None) -> int:
        key = name or NO_SERVICE
        index = self._component_index.get(key)
        if index is None:
            if len(self.components) >= 60000:
                return self._component_index.get(NO_SERVICE, 0)
            index = len(self.components)
            self.components.append(key)
            self._component_index[key] = index
        return index

    def add(self, record: LogRecord, *, service: str | None = None) -> None:
        """Add one record; ``service`` names its service when the record itself does not."""
        self.add_all((record,), service=service)

    def add_all(
        self,
        records: Iterable[LogRecord],
        *,
        service: str | None = None,
        own_services: Counter[str | None] | None = None,
    ) -> None:
        """Add records in order, each as :meth:`add` would; ``service`` names the service of those that do
        not name their own, and ``own_services`` (when given) counts the names they give themselves.

        This is the hot path: the table's arrays, dicts and the miner are looked up once per call rather
        than once per record, and the count of timestamped records is kept in a local until the end."""
        mine = self.miner.add
        append_ts = self.ts.append
        append_cluster = self.cluster.append
        append_severity = self.severity.append
        append_service = self.service.append
        append_component = self.component.append
        service_index = self._service_index
        component_index = self._component_index
        clusters = self.clusters
        sources = self.sources
        all_hosts = self.hosts
        all_error_hosts = self.error_hosts
        position = len(self.cluster)
        timestamped = 0
        try:
            for record in records:
                if own_services is not None:
                    own_services[record.service] += 1
                cluster = mine(record.message)
                timestamp = record.timestamp
                has_ts = timestamp is not None
                if timestamp is not None:
                    ts = timestamp.timestamp()
                    timestamped += 1
                else:
                    ts = math.nan
                severity = int(record.severity)
                name = record.service or service
                sid = service_index.get(name or NO_SERVICE)
                if sid is None:
                    sid = self.service_id(name)
                logger_name = record.logger
                component = component_index.get(logger_name or NO_SERVICE)
                if component is None:
                    component = self.component_id(logger_name)
                append_component(component)
                append_ts(ts)
                append_cluster(cluster)
                append_severity(severity)
                append_service(sid)
                sources[record.source] += 1
                where = record.pod or record.host
                if where:
                    hosts = all_hosts.get(sid)
                    if hosts is None:
                        hosts = all_hosts[sid] = Counter()
                    if len(hosts) < 500 or where in hosts:
                        hosts[where] += 1
                    if severity >= _ERROR:
                        errs = all_error_hosts.get(sid)
                        if errs is None:
                            errs = all_error_hosts[sid] = Counter()
                        if len(errs) < 500 or where in errs:
                            errs[where] += 1

                stats = clusters.get(cluster)
                if stats is None:
                    stats = clusters[cluster] = ClusterStats(first_pos=position)
                stats.count += 1
                stats.services[sid] += 1
                stats.severity = max(stats.severity, severity)
                if has_ts:
                    stats.first_ts = min(stats.first_ts, ts)
                    stats.last_ts = max(stats.last_ts, ts)
                notable = severity >= _WARN or record.lines > 1
                if len(stats.examples) < MAX_EXAMPLES and (notable or not stats.examples):
                    stats.examples.append(_evidence(record))

                if record.attributes:
                    self._note_version(record, sid=sid, ts=ts, position=position)

                if notable:
                    info = exception_of(record.message)
                    if info is not None:
                        self._add_exception(
                            info, record=record, ts=ts, service=sid, cluster=cluster, position=position
                        )
                position += 1
        finally:
            self.with_timestamp += timestamped

    def _note_version(self, record: LogRecord, *, sid: int, ts: float, position: int) -> None:
        attributes = record.attributes
        for key in VERSION_KEYS:
            value = attributes.get(key)
            if value:
                seen = self.versions.get((sid, value))
                if seen is None:
                    if len(self.versions) >= MAX_VERSIONS:
                        return
                    seen = self.versions[(sid, value)] = VersionSeen(
                        value=value, first_ts=ts, first_pos=position
                    )
                seen.count += 1
                return

    def _add_exception(
        self, info: ExceptionInfo, *, record: LogRecord, ts: float, service: int, cluster: int, position: int
    ) -> None:
        key = info.group_key
        group = self.exceptions.get(key)
        if group is None:
            if len(self.exceptions) >= MAX_EXCEPTION_GROUPS:
                return
            group = self.exceptions[key] = ExceptionGroup(
                info=info, first_pos=position, example=_evidence(record)
            )
        group.count += 1
        group.services[service] += 1
        group.clusters[cluster] += 1
        if not math.isnan(ts):
            group.first_ts = min(group.first_ts, ts)
            group.last_ts = max(group.last_ts, ts)

    # --- views for the detectors -------------------------------------------------------------------------

    def columns(self) -> LogColumns:
        return LogColumns(
            ts=np.frombuffer(self.ts, dtype=np.float64) if len(self.ts) else np.zeros(0),
            cluster=np.frombuffer(self.cluster, dtype=np.int32)
            if len(self.cluster)
            else np.zeros(0, np.int32),
            severity=np.frombuffer(self.severity, dtype=np.uint8)
            if len(self.severity)
            else np.zeros(0, np.uint8),
            service=np.frombuffer(self.service, dtype=np.uint16)
            if len(self.service)
            else np.zeros(0, np.uint16),
            component=np.frombuffer(self.component, dtype=np.uint16)
            if len(self.component)
            else np.zeros(0, np.uint16),
        )


@dataclass(frozen=True, slots=True)
class LogColumns:
    ts: npt.NDArray[np.float64]
    cluster: npt.NDArray[np.int32]
    severity: npt.NDArray[np.uint8]
    service: npt.NDArray[np.uint16]
    component: npt.NDArray[np.uint16]


def _evidence(record: LogRecord) -> EvidenceLine:
    """An example line: the message, plus the structured fields that say what went wrong (a JSON log's
    ``status=401 error.code=invalid_token`` often says more than its ``msg``)."""
    text = record.message
    if record.attributes and record.severity >= Severity.WARN:
        extra = " ".join(
            f"{k}={v}" for k, v in record.attributes.items() if k not in _ROUTINE_ATTRIBUTES and len(v) <= 200
        )
        if extra:
            head, _, rest = text.partition("\n")
            text = f"{head} {{{extra[:MAX_ATTRIBUTE_CHARS]}}}" + (f"\n{rest}" if rest else "")
    if len(text) > MAX_EXAMPLE_CHARS:
        # Keep the head and, for a stack trace, its last line: Python and Go put the error there.
        last = text.rstrip().rsplit("\n", 1)[-1].strip() if "\n" in text else ""
        room = MAX_EXAMPLE_CHARS - min(len(last), 200)
        text = text[:room] + "…" + (f"\n{last[:200]}" if last else "")
    return EvidenceLine(source=record.source, line=record.line, text=text)
