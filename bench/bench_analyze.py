"""`faultmaven analyze` against `faultmaven templates` on one generated incident file. Prints JSON.

The issue's target: analyzing a 1M-line file with a metrics file takes at most 4x the time of
`faultmaven templates` on the same file.

The log file is what a Kubernetes cluster's log shipper (Fluent Bit's ``tail`` + ``kubernetes`` filter, or its
``systemd`` input for node daemons) writes: one JSON object a line, the application's raw line under ``log``
and the pod's metadata beside it. The applications' lines come from the event templates of
:mod:`bench.corpus` (Spring, nginx, Python, Go logfmt, PostgreSQL, Redis, kubelet, HDFS, Spark, nova,
syslog), each style being one service, with the corpus' Zipf-like event frequencies and realistic values.

Four hours of traffic; three quarters of the way in, PostgreSQL runs out of connection slots (the origin).
Forty-five seconds later its clients fail: ``orders`` (Hikari pool timeouts), ``payments`` (lost DB
connections), ``checkout`` (upstream deadline exceeded) and ``gateway`` (nginx 504s and upstream timeouts).
The metrics CSV (long form, one row per service, metric and minute) shows the same thing as level shifts:
PostgreSQL's active connections pinned at ``max_connections``, orders' p99 latency and gateway's 5xx rate up,
while CPU and memory stay flat.

Both commands run as child processes of the installed console script, output to /dev/null, twice each
(alternating; the faster run counts, because the machine is shared). Peak RSS is measured by GNU time
(``/usr/bin/time -f %M``) when present, else from ``wait4`` (see :func:`run_child`). Everything is written
into a temporary directory that is deleted afterwards.

    .venv/bin/python -m bench.bench_analyze                 # 1M lines (~15 min on a busy 2-core machine)
    .venv/bin/python -m bench.bench_analyze --lines 50000   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bench import corpus
from bench.corpus import STYLE_WEIGHTS, STYLES, AccessLogValues, Values, clf_time

TARGET_RATIO = 4.0
T0 = datetime(2026, 3, 4, 8, 0, 0, tzinfo=UTC)  # yearless headers (syslog, klog) get the current year
SPAN = timedelta(hours=4)
INCIDENT_AT = T0 + timedelta(hours=3)
VICTIM_DELAY = timedelta(seconds=45)
ORIGIN = "postgres"
EXPECTED_CATEGORIES = ("connection_pool_exhaustion", "database_error")
START_TOLERANCE_S = 300.0
CONSOLE_SCRIPT = Path(sys.executable).with_name("faultmaven")
GNU_TIME = Path("/usr/bin/time")

# style -> (service, container); None service: a node daemon read from the journal, not a pod.
STYLE_SERVICE: dict[str, tuple[str, str]] = {
    "logback": ("orders", "orders"),
    "nginx_access": ("gateway", "nginx"),
    "nginx_error": ("gateway", "nginx"),
    "python": ("payments", "worker"),
    "logfmt": ("checkout", "checkout"),
    "postgres": ("postgres", "postgres"),
    "redis": ("redis", "redis"),
    "hdfs": ("hdfs-datanode", "datanode"),
    "spark": ("spark-etl", "executor"),
    "openstack": ("nova-compute", "nova-compute"),
}
JOURNAL_STYLES = {"klog": "kubelet", "syslog": None}  # SYSLOG_IDENTIFIER; syslog lines name their own tag
STATEFUL = {"postgres", "redis", "hdfs-datanode"}

# Incident lines: (style, the corpus event whose template contains this text, share of incident-window lines,
# starts after VICTIM_DELAY). The corpus has no driver errors naming the database, which is what the clients
# of an exhausted PostgreSQL log next to their pool timeouts, so EXTRA_EVENTS adds those (real texts: HikariCP
# / pgJDBC, psycopg2, lib/pq).
INCIDENT_EVENTS: tuple[tuple[str, str, float, bool], ...] = (
    ("postgres", "remaining connection slots are reserved", 0.006, False),
    ("postgres", "sorry, too many clients already", 0.010, False),
    ("postgres", "canceling statement due to statement timeout", 0.004, False),
    ("logback", "Connection is not available, request timed out", 0.025, True),
    ("logback", "PSQLException: FATAL: sorry, too many clients", 0.010, True),
    ("logback", "Unhandled exception while processing request", 0.006, True),
    ("python", "Database connection lost, reconnecting", 0.012, True),
    ("python", "psycopg2.OperationalError", 0.008, True),
    ("logfmt", "pq: sorry, too many clients already", 0.012, True),
    ("logfmt", "upstream request failed", 0.012, True),
    ("nginx_error", "upstream timed out (110", 0.015, True),
    ("nginx_access", '"GET {route} HTTP/1.1" {status}', 0.030, True),
)
DB_HOST = "postgres.prod.svc.cluster.local"
EXTRA_EVENTS: dict[str, list[tuple[str, str]]] = {
    "postgres": [("FATAL", "sorry, too many clients already")],
    "logback": [
        (
            "ERROR",
            "SQL Error: 0, SQLState: 53300 - org.postgresql.util.PSQLException: FATAL: sorry, too many clients "
            f"already (jdbc:postgresql://{DB_HOST}:5432/orders)",
        )
    ],
    "python": [
        (
            "ERROR",
            f'psycopg2.OperationalError: connection to server at "{DB_HOST}" ({{ip}}), port 5432 failed: '
            "FATAL:  sorry, too many clients already",
        )
    ],
    "logfmt": [
        (
            "ERROR",
            f'msg="query failed" db={DB_HOST}:5432 err="pq: sorry, too many clients already" attempt={{num:1-5}}',
        )
    ],
}


class IncidentValues(AccessLogValues):
    """The corpus' slot values, with access-log times on the generated clock and a forced status code."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.now = T0
        self.forced_status: str | None = None

    def clf(self) -> str:
        return clf_time(self.now)

    def status(self) -> str:
        if self.forced_status is not None:
            return self.forced_status
        return super().status()


@dataclass(frozen=True, slots=True)
class GroundTruth:
    lines: int
    incident_lines: int
    first_incident_line: int
    start: datetime
    end: datetime
    incident_start: datetime
    origin: str


def _event_index(style: str, fragment: str) -> int:
    """The index of the event whose template contains ``fragment``: the corpus' events, then EXTRA_EVENTS."""
    for index, (_, template) in enumerate(_events(style)):
        if fragment in template:
            return index
    raise SystemExit(f"bench.corpus has no {style} event containing {fragment!r}; update INCIDENT_EVENTS")


def _events(style: str) -> list[tuple[str, str]]:
    return STYLES[style][1] + EXTRA_EVENTS.get(style, [])


def _pods(rng: random.Random, values: Values) -> dict[str, list[str]]:
    pods: dict[str, list[str]] = {}
    for service, _ in STYLE_SERVICE.values():
        if service in pods:
            continue
        if service in STATEFUL:
            pods[service] = [f"{service}-{i}" for i in range(rng.choice((1, 2, 3)))]
        else:
            replicaset = values.k8s_suffix(10)
            pods[service] = [f"{service}-{replicaset}-{values.k8s_suffix(5)}" for _ in range(3)]
    return pods


def _line(
    ts: datetime,
    *,
    style: str,
    index: int,
    values: IncidentValues,
    pods: dict[str, list[str]],
    nodes: list[str],
) -> str:
    level, template = _events(style)[index]
    header_of = STYLES[style][0]
    values.now = ts
    message = corpus._fill(template, values)
    if style == "syslog":
        level = corpus._fill(level, values)
    raw = header_of(ts, values, level, index) + message
    rng = values.rng
    shipped = (ts + timedelta(milliseconds=rng.randrange(1, 400))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    node = nodes[index % len(nodes)]
    if style in JOURNAL_STYLES:
        ident = JOURNAL_STYLES[style]
        doc: dict[str, Any] = {"time": shipped, "log": raw, "host": node}
        if ident is not None:
            doc["SYSLOG_IDENTIFIER"] = ident
            doc["_SYSTEMD_UNIT"] = f"{ident}.service"
        return json.dumps(doc)
    service, container = STYLE_SERVICE[style]
    pod = rng.choice(pods[service])
    doc = {
        "time": shipped,
        "stream": "stderr" if level.upper().startswith(("E", "F", "W", "C")) else "stdout",
        "log": raw,
        "kubernetes": {
            "pod_name": pod,
            "namespace_name": "prod",
            "container_name": container,
            "host": nodes[sum(map(ord, pod)) % len(nodes)],
            "labels": {"app": service},
        },
    }
    return json.dumps(doc)


def generate_incident(lines: int, *, seed: int, out: TextIO) -> GroundTruth:
    """Write ``lines`` shipped log lines with the incident to ``out``; the same output for the same seed."""
    rng = random.Random(seed)
    values = IncidentValues(rng)
    nodes = [f"ip-10-0-{rng.randrange(1, 4)}-{rng.randrange(2, 254)}.ec2.internal" for _ in range(6)]
    pods = _pods(rng, values)
    styles = list(STYLES)
    weights = [STYLE_WEIGHTS[s] for s in styles]
    event_weights = {s: corpus._event_weights(len(STYLES[s][1]), rng) for s in styles}
    incident = [
        (style, _event_index(style, fragment), share, late)
        for style, fragment, share, late in INCIDENT_EVENTS
    ]
    incident_share = sum(share for *_, share, _ in incident)
    step = SPAN.total_seconds() / max(lines, 1)
    clock = T0
    incident_lines = 0
    first_incident_line = 0
    for number in range(1, lines + 1):
        clock += timedelta(seconds=step * rng.uniform(0.2, 1.8))
        values.forced_status = None
        in_incident = clock >= INCIDENT_AT
        if in_incident and rng.random() < incident_share:
            started = clock >= INCIDENT_AT + VICTIM_DELAY
            pick = rng.choices(
                incident, weights=[share if started or not late else 0.0 for *_, share, late in incident]
            )[0]
            style, index = pick[0], pick[1]
            if style == "nginx_access":
                values.forced_status = rng.choice(("504", "504", "502"))
            incident_lines += 1
            first_incident_line = first_incident_line or number
        else:
            style = rng.choices(styles, weights=weights)[0]
            index = rng.choices(range(len(STYLES[style][1])), weights=event_weights[style])[0]
        out.write(_line(clock, style=style, index=index, values=values, pods=pods, nodes=nodes) + "\n")
    return GroundTruth(
        lines=lines,
        incident_lines=incident_lines,
        first_incident_line=first_incident_line,
        start=T0,
        end=clock,
        incident_start=INCIDENT_AT,
        origin=ORIGIN,
    )


def _metric_value(name: str, at: datetime, rng: random.Random) -> float:
    """One sample of a metric; the level shifts at the incident (the origin first, its clients after)."""
    origin_hit = at >= INCIDENT_AT
    victim_hit = at >= INCIDENT_AT + VICTIM_DELAY
    hour = (at - T0).total_seconds() / 3600
    daily = 1.0 + 0.15 * math.sin(hour)  # traffic drifts slowly; the detectors must not alarm on it
    if name == "pg_stat_activity_count":
        return 100.0 if origin_hit else round(38 * daily + rng.gauss(0, 4), 1)
    if name == "http_request_duration_p99_ms":
        return round((2400 if victim_hit else 180 * daily) + rng.gauss(0, 25), 1)
    if name == "http_5xx_per_min":
        return max(0.0, round((140 if victim_hit else 2.5 * daily) + rng.gauss(0, 2), 1))
    if name == "cpu_percent":
        return round(35 * daily + rng.gauss(0, 3), 1)
    return round(61 + rng.gauss(0, 1.5), 1)  # memory_percent


METRICS: tuple[tuple[str, str], ...] = (
    ("postgres", "pg_stat_activity_count"),
    ("postgres", "cpu_percent"),
    ("orders", "http_request_duration_p99_ms"),
    ("orders", "cpu_percent"),
    ("orders", "memory_percent"),
    ("gateway", "http_5xx_per_min"),
    ("payments", "cpu_percent"),
    ("checkout", "memory_percent"),
)


def write_metrics(out: TextIO, *, seed: int, step: timedelta = timedelta(minutes=1)) -> int:
    rng = random.Random(seed)
    out.write("timestamp,service,metric,value\n")
    rows = 0
    at = T0
    while at <= T0 + SPAN:
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        for service, name in METRICS:
            out.write(f"{stamp},{service},{name},{_metric_value(name, at, rng)}\n")
            rows += 1
        at += step
    return rows


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    exit_code: int
    stdout: bytes
    stderr: bytes


def run_child(command: Sequence[str], *, keep_stdout: bool = False) -> Run:
    """Run ``command``: its wall time, CPU time and peak RSS.

    Peak RSS comes from GNU time (``%M``) when /usr/bin/time exists. Without it, it is the ``ru_maxrss`` that
    ``wait4`` reports for the child, which on Linux is at least this process's RSS when the child was
    spawned (exec records the forked address space's high-water mark), so it is an upper bound.
    """
    with (
        open(os.devnull, "wb") as sink,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryFile() as out,
        tempfile.NamedTemporaryFile(mode="r", suffix=".time") as timing,
    ):
        wrapped = (
            [str(GNU_TIME), "-f", "%M %U %S", "-o", timing.name, *command] if GNU_TIME.is_file() else command
        )
        started = time.perf_counter()
        child = subprocess.Popen(wrapped, stdout=out if keep_stdout else sink, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        peak_kib, cpu = float(usage.ru_maxrss), usage.ru_utime + usage.ru_stime
        if GNU_TIME.is_file():
            fields = timing.read().split()[
                -3:
            ]  # the last line; GNU time prefixes a note if the command failed
            if len(fields) == 3:
                peak_kib, cpu = float(fields[0]), float(fields[1]) + float(fields[2])
        err.seek(0)
        out.seek(0)
        return Run(
            seconds=elapsed,
            cpu_seconds=cpu,
            peak_mb=peak_kib / 1024,  # Linux reports KiB
            exit_code=child.returncode,
            stdout=out.read() if keep_stdout else b"",
            stderr=err.read(),
        )


def _summary(runs: Sequence[Run], lines: int) -> dict[str, Any]:
    best = min(runs, key=lambda r: r.seconds)
    return {
        "seconds": round(best.seconds, 2),
        "cpu_seconds": round(min(r.cpu_seconds for r in runs), 2),
        "all_runs_s": [round(r.seconds, 2) for r in runs],
        "lines_per_s": round(lines / best.seconds),
        "lines_per_cpu_s": round(lines / min(r.cpu_seconds for r in runs)),
        "peak_mb": round(max(r.peak_mb for r in runs), 1),
        "exit_codes": sorted({r.exit_code for r in runs}),
    }


def judge(report: dict[str, Any], truth: GroundTruth) -> dict[str, Any]:
    """Did analyze find the generated incident: origin among the suspects, start near the true start."""
    suspects = [s["name"] for s in report.get("suspects", [])]
    causes = [c["category"] for c in report.get("root_causes", [])]
    start_text = report.get("incident_start")
    found_start = datetime.fromisoformat(start_text) if start_text else None
    offset = (found_start - truth.incident_start).total_seconds() if found_start else None
    rank = suspects.index(truth.origin) + 1 if truth.origin in suspects else None
    cause_rank = next((i + 1 for i, c in enumerate(causes) if c in EXPECTED_CATEGORIES), None)
    return {
        "truth": {
            "origin": truth.origin,
            "incident_start": truth.incident_start.isoformat(),
            "first_incident_line": truth.first_incident_line,
            "incident_lines": truth.incident_lines,
            "expected_categories": list(EXPECTED_CATEGORIES),
        },
        "found": {
            "top_suspects": suspects[:5],
            "root_causes": causes[:5],
            "incident_start": start_text,
            "records": report.get("records"),
            "anomalies": len(report.get("anomalies", [])),
        },
        "origin_rank": rank,
        "top_suspect_is_origin": rank == 1,
        "category_rank": cause_rank,
        "start_offset_s": offset,
        "start_within_tolerance": offset is not None and abs(offset) <= START_TOLERANCE_S,
        "start_tolerance_s": START_TOLERANCE_S,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--lines", type=int, default=1_000_000, help="Log lines to generate (default 1000000)."
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=2, help="Runs of each command; the fastest counts.")
    parser.add_argument("--keep", metavar="DIR", help="Also copy the generated files to DIR (for profiling).")
    args = parser.parse_args(argv)
    if args.lines < 1000:
        parser.error("--lines must be at least 1000")
    if not CONSOLE_SCRIPT.is_file():
        parser.error(f"console script not found: {CONSOLE_SCRIPT} (install the project into this venv)")

    result: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other work: "
        "times move with load; best of the runs counts",
    }
    with tempfile.TemporaryDirectory(prefix="fm-bench-analyze-") as tmp:
        logs = Path(tmp) / "cluster.jsonl"
        metrics = Path(tmp) / "metrics.csv"
        started = time.perf_counter()
        with logs.open("w", encoding="utf-8") as out:
            truth = generate_incident(args.lines, seed=args.seed, out=out)
        with metrics.open("w", encoding="utf-8") as out:
            metric_rows = write_metrics(out, seed=args.seed)
        result["input"] = {
            "lines": truth.lines,
            "file_mb": round(logs.stat().st_size / 1e6, 1),
            "metric_rows": metric_rows,
            "metric_series": len(METRICS),
            "span": f"{truth.start.isoformat()} .. {truth.end.isoformat()}",
            "seed": args.seed,
            "generate_s": round(time.perf_counter() - started, 1),
        }
        result["peak_rss_from"] = (
            "GNU time %M"
            if GNU_TIME.is_file()
            else "wait4 ru_maxrss (upper bound: includes this process's RSS)"
        )
        if args.keep:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(logs, keep / logs.name)
            shutil.copyfile(metrics, keep / metrics.name)

        templates_cmd = [str(CONSOLE_SCRIPT), "templates", str(logs), "--format", "jsonl"]
        analyze_cmd = [
            str(CONSOLE_SCRIPT),
            "analyze",
            str(logs),
            "--metrics",
            str(metrics),
            "--format",
            "json",
        ]
        template_runs: list[Run] = []
        analyze_runs: list[Run] = []
        for _ in range(args.runs):
            template_runs.append(run_child(templates_cmd))
            analyze_runs.append(run_child(analyze_cmd, keep_stdout=True))
        failed = [r for r in (*template_runs, *analyze_runs) if r.exit_code != 0]
        if failed:
            result["error"] = "a command failed: " + failed[0].stderr.decode("utf-8", "replace")[-2000:]
            print(json.dumps(result, indent=2))
            return 1
        templates = _summary(template_runs, truth.lines)
        analyze = _summary(analyze_runs, truth.lines)
        ratio = analyze["seconds"] / templates["seconds"]
        result["templates"] = {"command": "faultmaven templates FILE --format jsonl > /dev/null", **templates}
        result["analyze"] = {
            "command": "faultmaven analyze FILE --metrics M --format json > a temp file (read for detection)",
            **analyze,
        }
        result["ratio"] = round(ratio, 2)
        result["ratio_cpu"] = round(analyze["cpu_seconds"] / templates["cpu_seconds"], 2)
        result["target_ratio"] = TARGET_RATIO
        result["meets_target"] = ratio <= TARGET_RATIO
        result["detection"] = judge(json.loads(analyze_runs[-1].stdout), truth)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
