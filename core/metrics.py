"""Reading metric input into :class:`~core.models.MetricSeries`.

Accepted inputs (``fmt``):

* ``snapshot`` – a mapping of metric name to a current value, e.g. ``{"cpu_usage": 92}``; each key becomes a
  one-point series without a timestamp (an optional ``timestamp`` key dates every point).
* ``csv`` – a time series table: ``timestamp,value``; wide ``timestamp,a,b,c``; or long form where text
  columns (``pod``, ``service``…) label the rows and an optional ``metric``/``name`` column names them.
* ``prometheus`` – a Prometheus HTTP API response to ``query`` (vector, scalar) or ``query_range`` (matrix).
* ``json_points`` – a JSON list of ``{"timestamp": …, "value": …}`` objects (or ``t``/``v``, ``time``/``y``,
  ``[ts, value]`` pairs, a ``{"name": …, "points": […]}`` wrapper, a ``{name: [points]}`` mapping, or JSON
  lines).
* ``auto`` (or ``None``) – decided from the content.

Timestamps may be ISO 8601, ``YYYY-MM-DD HH:MM:SS`` or epoch seconds/milliseconds; they come out as
timezone-aware UTC. Files ending in ``.gz`` (or gzip bytes) are decompressed. Nothing in the input raises:
rows and values that cannot be used become :class:`~core.models.ParseIssue` entries naming the source and
line (or JSON path), and everything valid is kept. Only an unknown ``fmt`` or an unreadable file raises
:class:`~core.errors.InputError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.models import MetricPoint, MetricSeries, ParseIssue

logger = logging.getLogger(__name__)

METRIC_FORMATS: tuple[str, ...] = ("auto", "snapshot", "csv", "prometheus", "json_points")

MAX_ISSUES_PER_SOURCE = 200
"""After this many issues for one source, further ones are counted into a single closing issue."""

_TIMESTAMP_NAMES = frozenset(
    {
        "timestamp",
        "time",
        "ts",
        "t",
        "date",
        "datetime",
        "@timestamp",
        "time_stamp",
        "period",
        "epoch",
        "when",
    }
)
_VALUE_NAMES = ("value", "v", "y", "val", "metric_value", "sample")
_NAME_NAMES = ("metric", "name", "__name__", "metric_name", "series")
_LABEL_MAP_NAMES = ("labels", "tags", "metric_labels", "dimensions")
_NAN_WORDS = frozenset({"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity", "+infinity"})
_MISSING_WORDS = frozenset({"", "null", "none", "na", "n/a", "-"})

# Epoch values are accepted between these bounds (1970-01-01 and 2200-01-01, in seconds).
_EPOCH_MIN = 0.0
_EPOCH_MAX = 7258118400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STRPTIME_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%b/%Y:%H:%M:%S %z",
    "%Y-%m-%d %H:%M",
    "%Y%m%dT%H%M%SZ",
)


# --------------------------------------------------------------------------------------------------
# Issue collection


@dataclass
class _Issues:
    """Collects issues for one source, capping how many are kept."""

    source: str
    sink: list[ParseIssue] | None
    count: int = 0
    suppressed: int = 0

    def add(self, message: str, *, line: int | None = None, level: str = "warning") -> None:
        self.count += 1
        if self.count > MAX_ISSUES_PER_SOURCE:
            self.suppressed += 1
            return
        issue = ParseIssue(
            source=self.source, line=line, level="error" if level == "error" else "warning", message=message
        )
        if self.sink is not None:
            self.sink.append(issue)
        else:
            logger.debug("metric input issue", extra={"metric_source": self.source, "issue_line": line})

    def close(self) -> None:
        if self.suppressed and self.sink is not None:
            self.sink.append(
                ParseIssue(
                    source=self.source,
                    message=f"{self.suppressed} further problems of the same kinds were not listed",
                )
            )
        self.suppressed = 0


# --------------------------------------------------------------------------------------------------
# Scalars: timestamps, numbers, units


def parse_timestamp(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from ISO 8601 text, common date-time text or epoch seconds/millis.

    Returns None when the value is not a timestamp. Naive text is taken to be UTC. Epoch numbers above
    1e11 are read as milliseconds, above 1e14 as microseconds and above 1e17 as nanoseconds.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    number = _plain_number(text)
    if number is not None:
        return _from_epoch(number)
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        parsed = None
        for pattern in _STRPTIME_FORMATS:
            try:
                parsed = datetime.strptime(text, pattern)
            except ValueError:
                continue
            break
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _plain_number(text: str) -> float | None:
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
        return None
    return float(text)


def _from_epoch(number: float) -> datetime | None:
    if not math.isfinite(number):
        return None
    for scale in (1.0, 1e3, 1e6, 1e9):
        seconds = number / scale
        if seconds < _EPOCH_MAX:
            break
    if not _EPOCH_MIN <= seconds < _EPOCH_MAX:
        return None
    # Whole microseconds from the epoch: exact and free of float rounding in fromtimestamp().
    return _EPOCH + timedelta(microseconds=round(seconds * 1e6))


def _parse_value(raw: object) -> tuple[float | None, str | None]:
    """(value, problem): value is None when the input is missing (problem None) or unusable (problem set)."""
    if isinstance(raw, bool):
        return None, "a boolean is not a metric value"
    if isinstance(raw, int | float):
        number = float(raw)
        if not math.isfinite(number):
            return None, f"value {raw!r} is not a finite number"
        return number, None
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        return None, f"value of type {type(raw).__name__} is not a number"
    text = raw.strip()
    if text.lower() in _MISSING_WORDS:
        return None, None
    if text.lower() in _NAN_WORDS:
        return None, f"value {_clip(text)!r} is not a finite number"
    cleaned = text.rstrip("%").replace("_", "") if text.endswith("%") else text
    try:
        number = float(cleaned)
    except ValueError:
        return None, f"value {_clip(text)!r} is not a number"
    if not math.isfinite(number):
        return None, f"value {_clip(text)!r} is not a finite number"
    return number, None


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_UNIT_TOKENS: dict[str, str] = {
    "bytes": "bytes",
    "byte": "bytes",
    "seconds": "seconds",
    "second": "seconds",
    "secs": "seconds",
    "ms": "ms",
    "millis": "ms",
    "milliseconds": "ms",
    "msec": "ms",
    "us": "us",
    "microseconds": "us",
    "percent": "percent",
    "percentage": "percent",
    "pct": "percent",
    "ratio": "ratio",
    "fraction": "ratio",
}
_SATURATION_SUBJECTS = frozenset(
    {"cpu", "memory", "mem", "disk", "fs", "filesystem", "storage", "swap", "heap"}
)
_SATURATION_WORDS = frozenset({"usage", "utilization", "utilisation", "util", "used", "busy"})
_COUNT_TOKENS = frozenset({"total", "count", "requests", "errors", "connections", "restarts"})


def infer_unit(name: str) -> str | None:
    """The unit a metric name implies: 'percent', 'bytes', 'seconds', 'ms', 'us', 'ratio', 'count' or None."""
    lowered = name.lower()
    if "%" in lowered:
        return "percent"
    tokens = [tok for tok in re.split(r"[^a-z0-9]+", lowered) if tok]
    for token in reversed(tokens):
        if token in _UNIT_TOKENS:
            return _UNIT_TOKENS[token]
    token_set = set(tokens)
    if token_set & _SATURATION_SUBJECTS and token_set & _SATURATION_WORDS:
        return "percent"
    if token_set & _COUNT_TOKENS:
        return "count"
    return None


def _split_header_unit(header: str) -> tuple[str, str | None]:
    """'latency (ms)' -> ('latency', 'ms'); 'cpu [%]' -> ('cpu', 'percent'); other names unchanged."""
    match = re.fullmatch(r"\s*(.*?)\s*[\(\[]\s*([^\)\]]{1,12})\s*[\)\]]\s*", header)
    if not match or not match.group(1):
        return header.strip(), None
    unit_text = match.group(2).strip().lower()
    unit = "percent" if unit_text == "%" else _UNIT_TOKENS.get(unit_text)
    if unit is None and unit_text in {"s", "sec"}:
        unit = "seconds"
    if unit is None and unit_text in {"b", "kb", "mb", "gb"}:
        unit = unit_text if unit_text != "b" else "bytes"
    return match.group(1), unit


def _stem(label: str) -> str | None:
    """A metric name from a source label such as a file path; None for '<memory>'-style labels."""
    if not label or label.startswith("<"):
        return None
    base = os.path.basename(label)
    for suffix in (".gz", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    base = re.sub(r"[^A-Za-z0-9_:.\-]+", "_", base).strip("_")
    return base or None


# --------------------------------------------------------------------------------------------------
# Building series


@dataclass
class _SeriesBuilder:
    """Accumulates points per (name, labels), keeping first-seen order."""

    source: str
    series: dict[tuple[str, tuple[tuple[str, str], ...]], MetricSeries] = field(default_factory=dict)

    def add(
        self,
        name: str,
        labels: Mapping[str, str],
        timestamp: datetime | None,
        value: float,
        *,
        unit: str | None = None,
    ) -> None:
        key = (name, tuple(sorted(labels.items())))
        found = self.series.get(key)
        if found is None:
            found = MetricSeries(
                name=name, labels=dict(labels), unit=unit or infer_unit(name), source=self.source
            )
            self.series[key] = found
        found.points.append(MetricPoint(timestamp=timestamp, value=value))

    def result(self) -> list[MetricSeries]:
        out = list(self.series.values())
        for series in out:
            if all(p.timestamp is not None for p in series.points):
                series.points.sort(key=lambda p: p.timestamp or _EPOCH)
        return out


# --------------------------------------------------------------------------------------------------
# Snapshot


def metrics_from_snapshot(
    snapshot: Mapping[str, float], *, source: str = "<memory>", issues: list[ParseIssue] | None = None
) -> list[MetricSeries]:
    """One single-point series per key of ``{"cpu_usage": 92, "memory_usage": 78}``.

    A ``timestamp`` key (any accepted timestamp form) dates every point; without one the points have no
    timestamp. Keys whose value is not a finite number are skipped and reported in ``issues``.
    """
    collector = _Issues(source, issues)
    out = _snapshot(snapshot, collector, path="$")
    collector.close()
    return out


def _snapshot(snapshot: Mapping[Any, Any], collector: _Issues, *, path: str) -> list[MetricSeries]:
    timestamp: datetime | None = None
    for key in snapshot:
        if isinstance(key, str) and key.lower() in _TIMESTAMP_NAMES:
            timestamp = parse_timestamp(snapshot[key])
            if timestamp is None:
                collector.add(f"{path}.{key}: {_clip(str(snapshot[key]))!r} is not a timestamp")
    builder = _SeriesBuilder(collector.source)
    for key, raw in snapshot.items():
        if not isinstance(key, str) or not key.strip():
            collector.add(f"{path}: a metric name must be non-empty text, got {_clip(repr(key))}")
            continue
        if key.lower() in _TIMESTAMP_NAMES:
            continue
        value, problem = _parse_value(raw)
        if value is None:
            collector.add(f"{path}.{_clip(key)}: {problem or 'no value'}")
            continue
        name, unit = _split_header_unit(key)
        builder.add(name, {}, timestamp, value, unit=unit)
    return builder.result()


# --------------------------------------------------------------------------------------------------
# CSV


def _sniff_delimiter(header_line: str) -> str:
    counts = {sep: header_line.count(sep) for sep in (",", "\t", ";", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _looks_like_header(row: list[str]) -> bool:
    if not row:
        return False
    first_is_time = parse_timestamp(row[0]) is not None
    rest_numeric = all(_parse_value(cell)[1] is None for cell in row[1:]) and len(row) > 1
    return not (first_is_time and rest_numeric)


def _read_csv(text: str, collector: _Issues, *, default_name: str) -> list[MetricSeries]:
    lines = text.splitlines()
    start = 0
    while start < len(lines) and (not lines[start].strip() or lines[start].lstrip().startswith("#")):
        start += 1
    if start >= len(lines):
        collector.add("no data: the input is empty", level="error")
        return []
    delimiter = _sniff_delimiter(lines[start])
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO("\n".join(lines[start:])), delimiter=delimiter)
    try:
        for row in reader:
            rows.append((reader.line_num + start, row))
    except csv.Error as exc:
        collector.add(
            f"CSV structure is broken here ({exc.__class__.__name__}); later rows were not read",
            line=reader.line_num + start + 1,
            level="error",
        )
    rows = [
        (num, row) for num, row in rows if any(cell.strip() for cell in row) and not row[0].startswith("#")
    ]
    if not rows:
        collector.add("no data rows", level="error")
        return []
    header_line, first = rows[0]
    if _looks_like_header(first):
        header = [cell.strip() for cell in first]
        data = rows[1:]
    else:
        header = ["timestamp", "value"] + [f"value_{i}" for i in range(2, len(first))]
        data = rows
    if not data:
        collector.add("the CSV has a header but no data rows", line=header_line, level="error")
        return []
    return _csv_rows(header, data, collector, default_name=default_name)


def _csv_rows(
    header: list[str], data: list[tuple[int, list[str]]], collector: _Issues, *, default_name: str
) -> list[MetricSeries]:
    lowered = [h.lower() for h in header]
    time_col = next((i for i, h in enumerate(lowered) if h in _TIMESTAMP_NAMES), None)
    if time_col is None and data and parse_timestamp(data[0][1][0] if data[0][1] else "") is not None:
        time_col = 0
    name_col = next((i for i, h in enumerate(lowered) if h in _NAME_NAMES and i != time_col), None)

    # Decide which columns hold numbers and which hold labels, from the whole table.
    value_cols: list[int] = []
    label_cols: list[int] = []
    for col in range(len(header)):
        if col in (time_col, name_col):
            continue
        numeric = missing = other = 0
        for _, row in data:
            if col >= len(row):
                continue
            value, problem = _parse_value(row[col])
            if value is not None or (problem and "finite" in problem):
                numeric += 1
            elif problem is None:
                missing += 1
            else:
                other += 1
        if numeric == 0 and other == 0:
            continue  # an empty column
        named_value = lowered[col] in _VALUE_NAMES or (numeric > 0 and infer_unit(header[col]) is not None)
        (value_cols if numeric >= other or named_value else label_cols).append(col)
    if not value_cols and len(label_cols) == 1:
        # A lone data column with more junk than numbers is still the data column.
        value_cols, label_cols = label_cols, []
    if not value_cols:
        collector.add(
            "no numeric value column found in the CSV header " + _clip(",".join(header), 80), level="error"
        )
        return []

    builder = _SeriesBuilder(collector.source)
    width = len(header)
    names: list[tuple[str, str | None]] = []
    for col in value_cols:
        column_name, unit = _split_header_unit(header[col] or f"column_{col + 1}")
        if column_name.lower() in _VALUE_NAMES and len(value_cols) == 1 and name_col is None:
            column_name = default_name
        names.append((column_name, unit))
    for line, row in data:
        if len(row) != width:
            collector.add(f"expected {width} fields, found {len(row)}; used the fields present", line=line)
        timestamp: datetime | None = None
        if time_col is not None:
            raw_time = row[time_col] if time_col < len(row) else ""
            timestamp = parse_timestamp(raw_time)
            if timestamp is None:
                collector.add(
                    f"timestamp {_clip(raw_time.strip())!r} is not a recognised time; row skipped", line=line
                )
                continue
        labels = {
            header[col] or f"column_{col + 1}": row[col].strip()
            for col in label_cols
            if col < len(row) and row[col].strip()
        }
        row_name = row[name_col].strip() if name_col is not None and name_col < len(row) else ""
        for col, (column_name, unit) in zip(value_cols, names, strict=True):
            if col >= len(row):
                continue
            value, problem = _parse_value(row[col])
            if value is None:
                if problem:
                    collector.add(f"column {_clip(header[col])!r}: {problem}", line=line)
                continue
            metric = column_name
            if row_name:
                metric = row_name if len(value_cols) == 1 else f"{row_name}_{column_name}"
            builder.add(metric, labels, timestamp, value, unit=unit)
    return builder.result()


# --------------------------------------------------------------------------------------------------
# Prometheus HTTP API


def _is_prometheus(doc: object) -> bool:
    if not isinstance(doc, Mapping):
        return False
    if "resultType" in doc and "result" in doc:
        return True
    data = doc.get("data")
    status = doc.get("status")
    return (isinstance(data, Mapping) and "resultType" in data) or (status == "error" and "error" in doc)


def _read_prometheus(doc: object, collector: _Issues, *, default_name: str) -> list[MetricSeries]:
    if not isinstance(doc, Mapping):
        collector.add("$: a Prometheus API response must be a JSON object", level="error")
        return []
    if "resultType" in doc:
        data: object = doc
        base = "$"
    else:
        status = doc.get("status")
        if status == "error":
            kind = doc.get("errorType")
            collector.add(f"$: Prometheus reported an error ({_clip(str(kind or 'unknown'))})", level="error")
            return []
        data = doc.get("data")
        base = "$.data"
    if not isinstance(data, Mapping):
        collector.add("$.data: missing or not an object", level="error")
        return []
    result_type = data.get("resultType")
    result = data.get("result")
    builder = _SeriesBuilder(collector.source)
    if result_type == "scalar":
        _pair_sample(
            result, f"{base}.result", name=default_name, labels={}, builder=builder, collector=collector
        )
        return builder.result()
    if result_type not in ("vector", "matrix"):
        collector.add(
            f"{base}.resultType: {_clip(str(result_type))!r} carries no numeric samples", level="error"
        )
        return []
    if not isinstance(result, list):
        collector.add(f"{base}.result: expected a list", level="error")
        return []
    for i, item in enumerate(result):
        path = f"{base}.result[{i}]"
        if not isinstance(item, Mapping):
            collector.add(f"{path}: expected an object")
            continue
        metric = item.get("metric") or {}
        if not isinstance(metric, Mapping):
            collector.add(f"{path}.metric: expected an object of labels")
            metric = {}
        labels = {str(k): str(v) for k, v in metric.items() if k != "__name__"}
        name = str(metric.get("__name__") or default_name)
        if result_type == "vector":
            _pair_sample(
                item.get("value"),
                f"{path}.value",
                name=name,
                labels=labels,
                builder=builder,
                collector=collector,
            )
        else:
            values = item.get("values")
            if not isinstance(values, list):
                collector.add(f"{path}.values: expected a list of [timestamp, value] pairs")
                continue
            for j, sample in enumerate(values):
                _pair_sample(
                    sample,
                    f"{path}.values[{j}]",
                    name=name,
                    labels=labels,
                    builder=builder,
                    collector=collector,
                )
    return builder.result()


def _pair_sample(
    sample: object,
    path: str,
    *,
    name: str,
    labels: Mapping[str, str],
    builder: _SeriesBuilder,
    collector: _Issues,
) -> None:
    """One ``[timestamp, value]`` sample (Prometheus API results, JSON points lists)."""
    if not isinstance(sample, list | tuple) or len(sample) != 2:
        collector.add(f"{path}: expected a [timestamp, value] pair")
        return
    timestamp = parse_timestamp(sample[0])
    if timestamp is None:
        collector.add(f"{path}[0]: {_clip(str(sample[0]))!r} is not a timestamp")
        return
    value, problem = _parse_value(sample[1])
    if value is None:
        collector.add(f"{path}[1]: {problem or 'missing value'}")
        return
    builder.add(name, labels, timestamp, value)


# --------------------------------------------------------------------------------------------------
# JSON points


def _first_key(obj: Mapping[str, Any], names: Iterable[str]) -> str | None:
    lowered = {str(k).lower(): k for k in obj}
    for name in names:
        if name in lowered:
            return str(lowered[name])
    return None


def _read_json_points(doc: object, collector: _Issues, *, default_name: str) -> list[MetricSeries]:
    builder = _SeriesBuilder(collector.source)
    if isinstance(doc, list):
        _points_list(doc, "$", name=default_name, labels={}, builder=builder, collector=collector)
    elif isinstance(doc, Mapping):
        list_key = _first_key(doc, ("points", "values", "data", "samples", "datapoints"))
        if list_key is not None and isinstance(doc[list_key], list):
            name_key = _first_key(doc, _NAME_NAMES)
            name = str(doc[name_key]) if name_key and isinstance(doc[name_key], str) else default_name
            labels = _labels_of(doc, "$", collector)
            _points_list(
                doc[list_key], f"$.{list_key}", name=name, labels=labels, builder=builder, collector=collector
            )
        else:
            for key, value in doc.items():
                path = f"$.{_clip(str(key))}"
                if isinstance(value, list):
                    _points_list(value, path, name=str(key), labels={}, builder=builder, collector=collector)
                else:
                    collector.add(f"{path}: expected a list of points")
    else:
        collector.add("$: expected a JSON list of points or an object of series", level="error")
    return builder.result()


def _labels_of(obj: Mapping[str, Any], path: str, collector: _Issues) -> dict[str, str]:
    key = _first_key(obj, _LABEL_MAP_NAMES)
    if key is None:
        return {}
    raw = obj[key]
    if not isinstance(raw, Mapping):
        collector.add(f"{path}.{key}: expected an object of labels")
        return {}
    return {
        str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float) and not isinstance(v, bool)
    }


def _points_list(
    items: list[Any],
    path: str,
    *,
    name: str,
    labels: Mapping[str, str],
    builder: _SeriesBuilder,
    collector: _Issues,
) -> None:
    if not items:
        collector.add(f"{path}: the list of points is empty")
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if isinstance(item, list | tuple):
            _pair_sample(item, here, name=name, labels=labels, builder=builder, collector=collector)
            continue
        if not isinstance(item, Mapping):
            collector.add(f"{here}: expected an object or a [timestamp, value] pair")
            continue
        _point_object(item, here, name=name, labels=labels, builder=builder, collector=collector)


def _point_object(
    item: Mapping[str, Any],
    here: str,
    *,
    name: str,
    labels: Mapping[str, str],
    builder: _SeriesBuilder,
    collector: _Issues,
) -> None:
    time_key = _first_key(item, sorted(_TIMESTAMP_NAMES))
    timestamp: datetime | None = None
    if time_key is not None:
        timestamp = parse_timestamp(item[time_key])
        if timestamp is None:
            collector.add(f"{here}.{time_key}: {_clip(str(item[time_key]))!r} is not a timestamp")
            return
    name_key = _first_key(item, _NAME_NAMES)
    point_name = str(item[name_key]) if name_key and isinstance(item[name_key], str) else name
    point_labels = dict(labels)
    point_labels.update(_labels_of(item, here, collector))
    value_key = _first_key(item, _VALUE_NAMES)
    if value_key is not None:
        for key, raw in item.items():
            if (
                key not in (time_key, value_key, name_key)
                and isinstance(raw, str)
                and key not in _LABEL_MAP_NAMES
            ):
                point_labels[str(key)] = raw
        value, problem = _parse_value(item[value_key])
        if value is None:
            collector.add(f"{here}.{value_key}: {problem or 'missing value'}")
            return
        builder.add(point_name, point_labels, timestamp, value)
        return
    # A wide object: every numeric field is its own series.
    found = False
    for key, raw in item.items():
        if (
            key in (time_key, name_key)
            or str(key).lower() in _LABEL_MAP_NAMES
            or isinstance(raw, str | Mapping)
        ):
            continue
        value, problem = _parse_value(raw)
        if value is None:
            collector.add(f"{here}.{_clip(str(key))}: {problem or 'missing value'}")
            continue
        found = True
        builder.add(str(key), point_labels, timestamp, value)
    if not found:
        collector.add(f"{here}: no numeric value in this point")


# --------------------------------------------------------------------------------------------------
# Entry point


def _decode(raw: bytes, collector: _Issues) -> str | None:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            collector.add("the gzip data is corrupt or truncated", level="error")
            return None
    if not raw.strip():
        collector.add("no data: the input is empty", level="error")
        return None
    if b"\x00" in raw[:8192]:
        collector.add("the input is binary data, not text metrics", level="error")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", errors="replace")
        if text.count("\ufffd") > max(8, len(text) // 100):
            collector.add("the input is binary data, not text metrics", level="error")
            return None
        collector.add(f"invalid UTF-8 at byte {exc.start}; undecodable bytes were replaced")
        return text


def _detect_text_format(text: str) -> str:
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return "json_points"  # broken JSON or JSON lines; the JSON reader reports which
        if _is_prometheus(doc):
            return "prometheus"
        if isinstance(doc, Mapping) and doc and all(not isinstance(v, list | Mapping) for v in doc.values()):
            return "snapshot"
        return "json_points"
    return "csv"


def _load_json(text: str, collector: _Issues) -> tuple[bool, object]:
    try:
        return True, json.loads(text)
    except ValueError as exc:
        first_error = exc
    # JSON lines: one object per line.
    items: list[object] = []
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError:
            bad.append(number)
    if items and len(bad) <= len(items):
        for number in bad:
            collector.add("this line is not valid JSON; skipped", line=number)
        return True, items
    where = getattr(first_error, "lineno", None)
    collector.add(
        "the input is not valid JSON", line=where if isinstance(where, int) else None, level="error"
    )
    return False, None


def _from_text(text: str, fmt: str, collector: _Issues, *, default_name: str) -> list[MetricSeries]:
    chosen = _detect_text_format(text) if fmt == "auto" else fmt
    if chosen == "csv":
        return _read_csv(text, collector, default_name=default_name)
    ok, doc = _load_json(text, collector)
    if not ok:
        return []
    if chosen == "prometheus":
        return _read_prometheus(doc, collector, default_name=default_name)
    if chosen == "snapshot":
        if not isinstance(doc, Mapping):
            collector.add("$: a snapshot must be a JSON object of name: value", level="error")
            return []
        return _snapshot(doc, collector, path="$")
    return _read_json_points(doc, collector, default_name=default_name)


def _from_mapping(
    doc: Mapping[str, Any], fmt: str, collector: _Issues, *, default_name: str
) -> list[MetricSeries]:
    chosen = fmt
    if fmt == "auto":
        if _is_prometheus(doc):
            chosen = "prometheus"
        elif all(not isinstance(v, list | Mapping) for v in doc.values()):
            chosen = "snapshot"
        else:
            chosen = "json_points"
    if chosen == "prometheus":
        return _read_prometheus(doc, collector, default_name=default_name)
    if chosen == "snapshot":
        return _snapshot(doc, collector, path="$")
    if chosen == "json_points":
        return _read_json_points(doc, collector, default_name=default_name)
    collector.add("a mapping cannot be read as CSV; pass the CSV text or a path", level="error")
    return []


def read_metrics(
    source: str | os.PathLike[str] | bytes | Mapping[str, Any],
    *,
    name: str | None = None,
    fmt: str | None = None,
    issues: list[ParseIssue] | None = None,
) -> list[MetricSeries]:
    """Read metric series from a path, raw bytes, inline text or an already-decoded mapping.

    ``source``: an ``os.PathLike`` is a file; a ``str`` is a file path unless it holds a newline or starts
    with ``{`` or ``[`` (then it is the text itself); ``bytes`` are the content (gzip is detected); a
    ``Mapping`` is a snapshot, a Prometheus response or a JSON-points document.
    ``name`` labels the source in series and issues (default: the path, or ``<bytes>``/``<text>``/``<memory>``);
    a lone ``value`` column takes its series name from it.
    ``fmt``: one of :data:`METRIC_FORMATS`; None means ``auto``.
    ``issues``: problems met are appended here; valid input is always kept.

    Raises InputError for an unknown ``fmt`` or a file that cannot be opened.
    """
    chosen = (fmt or "auto").strip().lower()
    if chosen not in METRIC_FORMATS:
        raise InputError(
            f"Unknown metrics format {_clip(str(fmt))!r}; valid formats are: {', '.join(METRIC_FORMATS)}."
        )
    if isinstance(source, Mapping):
        label = name or "<memory>"
        collector = _Issues(label, issues)
        out = _from_mapping(source, chosen, collector, default_name=_stem(label) or "value")
        collector.close()
        return out
    raw: bytes
    if isinstance(source, bytes):
        label = name or "<bytes>"
        raw = source
    elif isinstance(source, str) and ("\n" in source or source.lstrip()[:1] in ("{", "[")):
        label = name or "<text>"
        raw = source.encode("utf-8")
    else:
        path = Path(source)
        label = name or str(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"Metrics file not found: {label}") from None
        except IsADirectoryError:
            raise InputError(f"Metrics path is a directory, not a file: {label}") from None
        except OSError as exc:
            raise InputError(
                f"Metrics file cannot be read: {label} ({exc.strerror or exc.__class__.__name__})"
            ) from None
    collector = _Issues(label, issues)
    text = _decode(raw, collector)
    series: list[MetricSeries] = []
    if text is not None:
        series = _from_text(text, chosen, collector, default_name=_stem(label) or "value")
    collector.close()
    logger.debug(
        "read metrics", extra={"metric_source": label, "series": len(series), "issues": collector.count}
    )
    return series
