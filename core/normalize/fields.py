"""The fields a parsed header yields, the fast LogRecord construction, and field-name mapping for
structured records (JSON lines, logfmt, CSV rows) from ECS, OpenTelemetry, Bunyan/pino, GCP, journald
and the Kubernetes metadata that fluentd / fluent-bit / filebeat add."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, TypedDict

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


_ALL_FIELDS: Final = set(LogRecord.model_fields)
_UNSPECIFIED: Final = Severity.UNSPECIFIED
_new = LogRecord.__new__
_set = object.__setattr__


def build_record(
    fields: Fields, message: str, source: str, line: int, lines: int, fmt: str, defaults: Fields | None
) -> LogRecord:
    """Build a LogRecord from values that already have the right types, skipping validation.

    Every value here comes from the parsers in this package, which produce exactly the field types of
    :class:`LogRecord`; pydantic validation would only re-check them at several times the cost.
    """
    service = fields.get("service")
    pod = fields.get("pod")
    host = fields.get("host")
    if defaults is not None:
        if pod is None:
            pod = defaults.get("pod")
        if service is None:
            service = defaults.get("service")
        if host is None:
            host = defaults.get("host")
    if service is None and pod:
        service = workload_from_pod(pod)
    values = {
        "source": source,
        "line": line,
        "lines": lines,
        "timestamp": fields.get("timestamp"),
        "severity": fields.get("severity", _UNSPECIFIED),
        "severity_text": fields.get("severity_text"),
        "service": service,
        "host": host,
        "pod": pod,
        "logger": fields.get("logger"),
        "message": message,
        "attributes": fields.get("attributes") or {},
        "format": fmt,
    }
    record = _new(LogRecord)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", _ALL_FIELDS)
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def cap_value(value: str) -> str:
    if len(value) > MAX_ATTRIBUTE_VALUE:
        return value[: MAX_ATTRIBUTE_VALUE - 1] + "…"
    return value


def bounded_attributes(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """At most MAX_ATTRIBUTES entries, keys and values capped; the overflow is counted, not kept."""
    out: dict[str, str] = {}
    dropped = 0
    for key, value in items:
        if len(out) >= MAX_ATTRIBUTES:
            dropped += 1
            continue
        out[key[:MAX_ATTRIBUTE_KEY]] = cap_value(value)
    if dropped:
        out["attributes.dropped"] = str(dropped)
    return out


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


def _take(flat: dict[str, Scalar], keys: tuple[str, ...]) -> tuple[str, Scalar] | None:
    for key in keys:
        value = flat.get(key)
        if value is not None and value != "" and value != "-":
            del flat[key]
            return key, value
    return None


def _take_text(flat: dict[str, Scalar], keys: tuple[str, ...]) -> str | None:
    found = _take(flat, keys)
    if found is None:
        return None
    return scalar_text(found[1])[: MAX_ATTRIBUTE_KEY * 2]


def fields_from_flat(flat: dict[str, Scalar], *, raw: str) -> Fields:
    """Map a flattened structured record onto LogRecord fields. ``flat`` is consumed: what remains
    becomes the attributes. ``raw`` stands in as the message when no message field exists."""
    fields: Fields = {}
    found = _take(flat, TIME_KEYS)
    if found is not None:
        moment = parse_time_value(found[1])
        if moment is None:
            flat[found[0]] = found[1]
        fields["timestamp"] = moment
    found = _take(flat, LEVEL_KEYS)
    if found is not None:
        key, value = found
        text = scalar_text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            fields["severity"] = severity_from_number(int(value), key=key)
        elif text.isdigit():
            fields["severity"] = severity_from_number(int(text), key=key)
        else:
            fields["severity"] = severity_from_text(text)
        fields["severity_text"] = text[:32]
        # OTel records carry both SeverityText and SeverityNumber; keep the number as an attribute.
    if "severity" in fields and fields["severity"] is Severity.UNSPECIFIED:
        for key in ("SeverityNumber", "severityNumber", "severity_number"):
            value = flat.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                fields["severity"] = severity_from_number(value, key=key)
                break
    pod = _take_text(flat, POD_KEYS)
    if pod is not None:
        fields["pod"] = pod
    # Bunyan/pino put the application name in "name" next to "hostname"/"pid".
    service = _take_text(flat, SERVICE_KEYS)
    if service is None and isinstance(flat.get("name"), str) and ("hostname" in flat or "pid" in flat):
        service = _take_text(flat, ("name",))
    if service is not None:
        fields["service"] = service
    host = _take_text(flat, HOST_KEYS)
    if host is not None:
        fields["host"] = host
    logger_name = _take_text(flat, LOGGER_KEYS)
    if logger_name is not None:
        fields["logger"] = logger_name
    found = _take(flat, MESSAGE_KEYS)
    if found is not None:
        text = scalar_text(found[1])
        fields["message"] = text[:-1] if text.endswith("\n") else text
    else:
        fields["message"] = raw
    if flat:
        fields["attributes"] = bounded_attributes((key, scalar_text(value)) for key, value in flat.items())
    return fields
