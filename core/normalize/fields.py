"""The fields a parsed header yields, the fast LogRecord construction, and field-name mapping for
structured records (JSON lines, logfmt, CSV rows) from ECS, OpenTelemetry, Bunyan/pino, GCP, journald
and the Kubernetes metadata that fluentd / fluent-bit / filebeat add."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Final, Protocol, TypedDict, cast

from core.models import LogRecord, Severity
from core.normalize.kubernetes import workload_from_pod
from core.normalize.severity import severity_from_number, severity_from_text
from core.normalize.timestamps import parse_time_value

logger = logging.getLogger(__name__)

MAX_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_KEY: Final = 128
MAX_ATTRIBUTE_VALUE: Final = 2048
_MAX_DEPTH: Final = 8

Scalar = str | int | float | bool


class Fields(TypedDict, total=False):
    """What a parser found in a record header; every key is optional."""

    timestamp: datetime | None
    severity: Severity
    severity_text: str | None
    service: str | None
    host: str | None
    pod: str | None
    logger: str | None
    message: str
    attributes: dict[str, str]


class HeaderParser(Protocol):
    """A format's header parser: the fields of a line's header, or None when the line has none. With
    ``full`` False it gives only the message: the same lines accepted, the same message text, none of the
    other fields converted (no timestamps, severities or attributes)."""

    def __call__(self, line: str, full: bool = True) -> Fields | None: ...


_ALL_FIELDS: Final = set(LogRecord.model_fields)
_TEMPLATE: Final[dict[str, object]] = {
    "source": "",
    "line": 1,
    "lines": 1,
    "timestamp": None,
    "severity": Severity.UNSPECIFIED,
    "severity_text": None,
    "service": None,
    "host": None,
    "pod": None,
    "logger": None,
    "message": "",
    "attributes": None,
    "format": "plain",
}
_new = LogRecord.__new__


def _slot_setter(name: str) -> Callable[[LogRecord, object], None]:
    """The setter of one of the slots pydantic gives a model, taken once: calling it directly costs about
    a third of ``object.__setattr__``, which looks the slot up by name on every call."""
    for klass in LogRecord.__mro__:
        slot = klass.__dict__.get(name)
        if slot is not None and hasattr(slot, "__set__"):
            return cast("Callable[[LogRecord, object], None]", slot.__set__)

    def set_attribute(record: LogRecord, value: object) -> None:
        object.__setattr__(record, name, value)

    return set_attribute


_set_dict = _slot_setter("__dict__")
_set_fields_set = _slot_setter("__pydantic_fields_set__")
_set_extra = _slot_setter("__pydantic_extra__")
_set_private = _slot_setter("__pydantic_private__")


# ``build(fields, message, line, lines)``: the record of one header and its message (see record_builder).
RecordBuilder = Callable[[Fields, str, int, int], LogRecord]


def record_builder(*, source: str, fmt: str, defaults: Fields | None) -> RecordBuilder:
    """The builder of the LogRecords of one source: values that already have the right types in, no
    validation.

    Every value here comes from the parsers in this package, which produce exactly the field types of
    :class:`LogRecord`; pydantic validation would only re-check them at several times the cost. The
    source and format are bound once (read_logs builds one record per header line, so the per-record
    work is kept to copying the template, the parser's fields and the line accounting). A parser's
    Fields never hold ``source``, ``line``, ``lines`` or ``format``, so setting those before the update
    gives the same values as setting them after.
    """
    template = _TEMPLATE.copy()
    template["source"] = source
    template["format"] = fmt

    def build(fields: Fields, message: str, line: int, lines: int) -> LogRecord:
        values = template.copy()
        values.update(fields)
        values["line"] = line
        values["lines"] = lines
        values["message"] = message
        if values["attributes"] is None:
            values["attributes"] = {}
        if defaults is not None:
            for key in ("pod", "service", "host"):
                if values[key] is None:
                    values[key] = defaults.get(key)
        if values["service"] is None and values["pod"]:
            values["service"] = workload_from_pod(str(values["pod"]))
        record = _new(LogRecord)
        _set_dict(record, values)
        _set_fields_set(record, _ALL_FIELDS)
        _set_extra(record, None)
        _set_private(record, None)
        return record

    return build


def cap_value(value: str) -> str:
    if len(value) > MAX_ATTRIBUTE_VALUE:
        return value[: MAX_ATTRIBUTE_VALUE - 1] + "…"
    return value


def bounded_attributes(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """At most MAX_ATTRIBUTES entries, keys and values capped; the overflow is counted, not kept."""
    out = dict(items)
    if not out or (
        len(out) <= MAX_ATTRIBUTES
        and max(map(len, out.values())) <= MAX_ATTRIBUTE_VALUE
        and max(map(len, out)) <= MAX_ATTRIBUTE_KEY
    ):
        return out
    bounded: dict[str, str] = {}
    for key, value in out.items():
        if len(bounded) >= MAX_ATTRIBUTES:
            break
        bounded[key[:MAX_ATTRIBUTE_KEY]] = cap_value(value)
    dropped = len(out) - len(bounded)
    if dropped:
        bounded["attributes.dropped"] = str(dropped)
    return bounded


def scalar_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return str(value)


_ANY_VALUE_KEYS: Final = frozenset({"stringValue", "intValue", "boolValue", "doubleValue", "bytesValue"})


def _compact(value: object) -> str:
    try:
        return cap_value(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))
    except (TypeError, ValueError, RecursionError):
        return "<unserialisable>"


def flatten(obj: Mapping[str, object], out: dict[str, Scalar], prefix: str = "", depth: int = 0) -> None:
    """Flatten nested mappings into dotted keys. OTLP ``[{"key":..,"value":{"stringValue":..}}]`` lists
    and single-entry AnyValue objects collapse to their scalar; other lists become compact JSON."""
    for raw_key, value in obj.items():
        key = f"{prefix}{raw_key}" if prefix else str(raw_key)
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            out[key] = value
        elif isinstance(value, dict):
            if len(value) == 1:
                only = next(iter(value))
                if only in _ANY_VALUE_KEYS:
                    inner = value[only]
                    if isinstance(inner, str | int | float | bool):
                        out[key] = inner
                        continue
            if depth >= _MAX_DEPTH:
                out[key] = _compact(value)
            else:
                flatten(value, out, key + ".", depth + 1)
        elif isinstance(value, list):
            if value and all(isinstance(item, dict) and "key" in item for item in value):
                pairs = {str(item["key"]): item.get("value") for item in value if isinstance(item, dict)}
                if depth >= _MAX_DEPTH:
                    out[key] = _compact(pairs)
                else:
                    flatten(pairs, out, key + ".", depth + 1)
            else:
                out[key] = _compact(value)
        else:
            out[key] = str(value)


def _with_prefixes(names: Iterable[str], prefixes: Iterable[str]) -> tuple[str, ...]:
    prefix_list = tuple(prefixes)
    return tuple(prefix + name for name in names for prefix in prefix_list)


_RESOURCE_PREFIXES: Final = (
    "",
    "Resource.",
    "resource.",
    "resource.attributes.",
    "resourceLogs.resource.attributes.",
    "attributes.",
    "Attributes.",
)

TIME_KEYS: Final = (
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "Timestamp",
    "timeUnixNano",
    "time_unix_nano",
    "observedTimeUnixNano",
    "ObservedTimestamp",
    "datetime",
    "date",
    "asctime",
    "eventTime",
    "@t",
    "t",
    "_time",
    "__REALTIME_TIMESTAMP",
    "logtime",
    "receiveTimestamp",
)
LEVEL_KEYS: Final = (
    "log.level",
    "level",
    "severity",
    "SeverityText",
    "severityText",
    "severity_text",
    "levelname",
    "level_name",
    "lvl",
    "loglevel",
    "log_level",
    "@l",
    "SeverityNumber",
    "severityNumber",
    "severity_number",
    "PRIORITY",
    "log.syslog.severity.name",
)
MESSAGE_KEYS: Final = (
    "message",
    "msg",
    "Body",
    "body",
    "textPayload",
    "jsonPayload.message",
    "jsonPayload.msg",
    "MESSAGE",
    "@m",
    "@mt",
    "log",
    "event",
    "short_message",
    "full_message",
    "_raw",
)
SERVICE_KEYS: Final = (
    *_with_prefixes(("service.name",), _RESOURCE_PREFIXES),
    "service",
    "serviceName",
    "service_name",
    "resource.labels.service_name",
    "serviceContext.service",
    "jsonPayload.serviceContext.service",
    "app",
    "application",
    "kubernetes.labels.app",
    "kubernetes.labels.app_kubernetes_io/name",
    "kubernetes.labels.app.kubernetes.io/name",
    "kubernetes.labels.k8s-app",
    "labels.k8s-pod/app",
    "labels.k8s-pod/app_kubernetes_io/name",
    "SYSLOG_IDENTIFIER",
)
HOST_KEYS: Final = (
    *_with_prefixes(("host.name",), _RESOURCE_PREFIXES),
    "host.hostname",
    "hostname",
    "host",
    "_HOSTNAME",
    "kubernetes.host",
    "kubernetes.node.name",
    "resource.labels.instance_id",
    "resource.labels.node_name",
)
POD_KEYS: Final = (
    *_with_prefixes(("k8s.pod.name",), _RESOURCE_PREFIXES),
    "kubernetes.pod_name",
    "kubernetes.pod.name",
    "resource.labels.pod_name",
    "k8s_pod_name",
    "pod_name",
    "pod",
)
LOGGER_KEYS: Final = (
    "log.logger",
    "logger",
    "logger_name",
    "loggerName",
    "logger.name",
    "SourceContext",
    "InstrumentationScope.name",
    "instrumentationScope.name",
    "scope.name",
    "component",
    "module",
)


_TIME, _LEVEL, _POD, _SERVICE, _HOST, _LOGGER, _MESSAGE = range(7)
_ROLE_KEYS: Final = (TIME_KEYS, LEVEL_KEYS, POD_KEYS, SERVICE_KEYS, HOST_KEYS, LOGGER_KEYS, MESSAGE_KEYS)
# field name -> (role, priority within the role); the first role listing a name keeps it
_ROLES: Final[dict[str, tuple[int, int]]] = {}
for _role, _keys in enumerate(_ROLE_KEYS):
    for _priority, _key in enumerate(_keys):
        _ROLES.setdefault(_key, (_role, _priority))
_OTEL_NUMBERS: Final = ("SeverityNumber", "severityNumber", "severity_number")


def _pick(flat: dict[str, Scalar]) -> list[str | None]:
    """For each role, the highest-priority key present in ``flat`` with a usable value.

    One pass over the record's own keys (usually a handful) instead of probing ~100 candidate names.
    Empty values and "-" do not count, except for the message, where an explicit empty string is kept.
    """
    chosen: list[str | None] = [None] * len(_ROLE_KEYS)
    ranks = [len(_ROLES)] * len(_ROLE_KEYS)
    for key, value in flat.items():
        hit = _ROLES.get(key)
        if hit is None:
            continue
        role, priority = hit
        if priority < ranks[role] and (role == _MESSAGE or value not in ("", "-")):
            chosen[role] = key
            ranks[role] = priority
    return chosen


def _text_of(flat: dict[str, Scalar], key: str | None) -> str | None:
    if key is None:
        return None
    return scalar_text(flat.pop(key))[: MAX_ATTRIBUTE_KEY * 2]


_EVENT_TIME_KEYS: Final = (
    "lastTimestamp",
    "eventTime",
    "deprecatedLastTimestamp",
    "firstTimestamp",
    "metadata.creationTimestamp",
)
_WORKLOAD_KINDS: Final = frozenset(
    {
        "Pod",
        "ReplicaSet",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "Service",
    }
)


def _kubernetes_event(flat: dict[str, Scalar]) -> Fields | None:
    """A Kubernetes Event object (``kubectl get events -o json`` items, event exporters), or None.

    The message reads like kubectl's columns: ``<reason> <kind>/<name>: <message>``; Warning events are WARN.
    """
    if flat.get("kind") != "Event":
        return None
    prefix = (
        "involvedObject."
        if "involvedObject.name" in flat
        else "regarding."
        if "regarding.name" in flat
        else None
    )
    if prefix is None:
        return None
    name = scalar_text(flat[prefix + "name"])
    kind = scalar_text(flat.get(prefix + "kind", "")) or "Object"
    fields: Fields = {}
    for key in _EVENT_TIME_KEYS:
        value = flat.get(key)
        if value not in (None, "", "-"):
            moment = parse_time_value(value)
            if moment is not None:
                fields["timestamp"] = moment
                break
    event_type = scalar_text(flat.get("type", ""))
    fields["severity"] = (
        Severity.WARN
        if event_type == "Warning"
        else Severity.INFO
        if event_type == "Normal"
        else Severity.UNSPECIFIED
    )
    fields["severity_text"] = event_type[:32] or None
    if kind == "Pod":
        fields["pod"] = name
    if kind in _WORKLOAD_KINDS:
        fields["service"] = workload_from_pod(name) if kind in ("Pod", "ReplicaSet", "Job") else name
    elif kind == "Node":
        fields["host"] = name
    component = (
        flat.get("source.component") or flat.get("reportingComponent") or flat.get("reportingController")
    )
    if component:
        fields["logger"] = scalar_text(component)
    reason = scalar_text(flat.get("reason", ""))
    message = scalar_text(flat.get("message", flat.get("note", "")))
    fields["message"] = f"{reason} {kind.lower()}/{name}: {message}".strip()
    kept = (key for key in flat if key not in ("message", "note"))
    fields["attributes"] = bounded_attributes((key, scalar_text(flat[key])) for key in kept)
    return fields


def _message_text(flat: dict[str, Scalar], key: str | None, raw: str) -> str:
    if key is None:
        return raw
    text = scalar_text(flat.pop(key))
    return text[:-1] if text.endswith("\n") else text


def message_from_flat(flat: dict[str, Scalar], *, raw: str) -> Fields:
    """Only the message :func:`fields_from_flat` gives ``flat`` (the same choice of field, found without
    mapping the other fields). ``flat`` is consumed."""
    if flat.get("kind") == "Event":
        event = _kubernetes_event(flat)
        if event is not None:
            return {"message": event.get("message", "")}
    key: str | None = None
    rank = len(_ROLES)
    for name in flat:
        hit = _ROLES.get(name)
        if hit is not None and hit[0] == _MESSAGE and hit[1] < rank:
            key, rank = name, hit[1]
    return {"message": _message_text(flat, key, raw)}


def fields_from_flat(flat: dict[str, Scalar], *, raw: str) -> Fields:
    """Map a flattened structured record onto LogRecord fields. ``flat`` is consumed: what remains
    becomes the attributes. ``raw`` stands in as the message when no message field exists."""
    event = _kubernetes_event(flat)
    if event is not None:
        return event
    fields: Fields = {}
    time_key, level_key, pod_key, service_key, host_key, logger_key, message_key = _pick(flat)
    if time_key is not None:
        moment = parse_time_value(flat[time_key])
        if moment is not None:
            del flat[time_key]
        fields["timestamp"] = moment
    if level_key is not None:
        value = flat.pop(level_key)
        text = scalar_text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            severity = severity_from_number(int(value), key=level_key)
        elif text.isdigit():
            severity = severity_from_number(int(text), key=level_key)
        else:
            severity = severity_from_text(text)
        if severity is Severity.UNSPECIFIED:
            # OTel records carry SeverityText and SeverityNumber: the number decides when the text is unknown.
            for key in _OTEL_NUMBERS:
                number = flat.get(key)
                if isinstance(number, int) and not isinstance(number, bool):
                    severity = severity_from_number(number, key=key)
                    break
        fields["severity"] = severity
        fields["severity_text"] = text[:32]
    if pod_key is not None:
        fields["pod"] = _text_of(flat, pod_key)
    if service_key is None:
        # Bunyan/pino put the application name in "name" next to "hostname"/"pid".
        name = flat.get("name")
        if isinstance(name, str) and name and ("hostname" in flat or "pid" in flat):
            service_key = "name"
    if service_key is not None:
        fields["service"] = _text_of(flat, service_key)
    if host_key is not None:
        fields["host"] = _text_of(flat, host_key)
    if logger_key is not None:
        fields["logger"] = _text_of(flat, logger_key)
    fields["message"] = _message_text(flat, message_key, raw)
    if flat:
        fields["attributes"] = bounded_attributes((key, scalar_text(value)) for key, value in flat.items())
    return fields
