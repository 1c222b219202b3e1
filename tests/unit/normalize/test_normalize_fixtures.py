"""Every fixture log goes through read_logs: detected format, record boundaries and key fields."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.models import LogRecord, ParseIssue, Severity
from core.normalize import ASSUMED_YEAR, detect_format, read_logs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def load(name: str, **kwargs: object) -> tuple[list[LogRecord], list[ParseIssue]]:
    issues: list[ParseIssue] = []
    records = list(read_logs(FIXTURES / name, issues=issues, **kwargs))  # type: ignore[arg-type]
    return records, issues


def physical_lines(name: str) -> int:
    return len((FIXTURES / name).read_text(encoding="utf-8").splitlines())


EXPECTED_FORMATS = {
    "java_logback_stacktrace.log": "log4j",
    "python_traceback.log": "python",
    "python_basic.log": "python",
    "go_panic.log": "iso",
    "nginx_access.log": "apache_access",
    "nginx_error.log": "nginx_error",
    "apache_error.log": "apache_error",
    "syslog_3164.log": "syslog3164",
    "syslog_5424.log": "syslog5424",
    "ecs.jsonl": "jsonl",
    "otel.jsonl": "jsonl",
    "bunyan.jsonl": "jsonl",
    "gcp.jsonl": "jsonl",
    "k8s_events.jsonl": "jsonl",
    "fluentbit_k8s.jsonl": "docker_json",
    "logfmt.log": "logfmt",
    "iso_logfmt.log": "iso",
    "docker_json.log": "docker_json",
    "cri.log": "cri",
    "kibana_export.csv": "csv",
    "hdfs.log": "hdfs",
    "epoch.log": "epoch",
    "postgres.log": "postgres",
    "glog.log": "glog",
    "kubectl_mixed.log": "jsonl",
}


def test_every_fixture_has_an_expected_format() -> None:
    assert sorted(EXPECTED_FORMATS) == sorted(path.name for path in FIXTURES.iterdir())


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED_FORMATS.items()))
def test_detects_the_format_and_accounts_for_every_line(name: str, expected: str) -> None:
    sample = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    assert detect_format(sample) == expected
    records, issues = load(name)
    assert records, name
    assert all(record.format == expected for record in records)
    assert all(record.source == str(FIXTURES / name) for record in records)
    # ranges are in order, disjoint, and cover every line but a CSV header
    covered = 0
    previous_end = 0
    for record in records:
        assert record.line > previous_end
        previous_end = record.end_line
        covered += record.lines
    header = 1 if expected == "csv" else 0
    assert covered == physical_lines(name) - header
    assert previous_end == physical_lines(name)
    if name != "kubectl_mixed.log":
        assert issues == []
    for record in records:
        assert record.timestamp is None or record.timestamp.tzinfo is UTC
        assert isinstance(record.severity, Severity)
        assert all(isinstance(value, str) for value in record.attributes.values())
        LogRecord.model_validate(record.model_dump())  # the fast construction yields valid records


def test_explicit_format_matches_detection() -> None:
    auto, _ = load("nginx_error.log")
    explicit, _ = load("nginx_error.log", fmt="nginx_error")
    assert [record.model_dump() for record in auto] == [record.model_dump() for record in explicit]


def test_java_stack_traces_join_their_record() -> None:
    records, _ = load("java_logback_stacktrace.log")
    assert len(records) == 13
    failure = records[6]
    assert (failure.line, failure.lines) == (7, 13)
    assert failure.severity is Severity.ERROR
    assert failure.logger == "c.e.checkout.payment.PaymentClient"
    assert failure.attributes["thread"] == "http-nio-8080-exec-1"
    assert failure.timestamp == datetime(2024, 3, 1, 10, 0, 18, 204000, tzinfo=UTC)
    lines = failure.message.split("\n")
    assert lines[0] == "payment authorization failed for order 10023"
    assert lines[1].startswith("org.springframework.web.client.ResourceAccessException")
    assert "Caused by: java.net.SocketTimeoutException: Read timed out" in lines
    assert lines[-1] == "\t... 12 more"
    servlet = records[9]
    assert servlet.logger == "o.a.c.c.C.[.[localhost].[/].[dispatcherServlet]"
    assert servlet.message.startswith("Servlet.service() for servlet [dispatcherServlet] threw exception\n")
    assert servlet.lines == 10  # "Suppressed:" frames and the trailing blank line included
    assert not servlet.message.endswith("\n")


def test_python_tracebacks_with_chained_exceptions() -> None:
    records, _ = load("python_traceback.log")
    failure = records[4]
    assert (failure.line, failure.lines) == (5, 17)
    assert failure.logger == "inventory.db"
    assert failure.severity is Severity.ERROR
    assert "During handling of the above exception, another exception occurred:" in failure.message
    assert failure.message.endswith("inventory.errors.StockUpdateError: AB-1092")
    assert records[5].message == "message requeued sku=AB-1092 attempt=1"
    assert records[7].severity is Severity.FATAL  # CRITICAL


def test_python_default_layout_and_traceback() -> None:
    records, _ = load("python_basic.log")
    assert [record.severity_text for record in records] == [
        "INFO",
        "INFO",
        "WARNING",
        "ERROR",
        "INFO",
        "CRITICAL",
    ]
    assert records[3].lines == 7
    assert records[3].message.endswith("TimeoutError: S3 PUT timed out after 30s")
    assert records[4].logger == "root"


def test_go_panic_is_a_record_of_its_own_with_the_goroutine_dump() -> None:
    records, _ = load("go_panic.log")
    assert len(records) == 7
    panic = records[4]
    assert panic.severity is Severity.FATAL
    assert (panic.line, panic.lines) == (5, 17)
    assert panic.message.startswith("panic: runtime error: invalid memory address")
    assert "goroutine 1 [IO wait]:" in panic.message
    assert panic.message.endswith("exit status 2")
    assert records[3].message == 'cart-api request failed path=/v1/cart/42 err="context deadline exceeded"'


def test_access_log_status_sets_severity() -> None:
    records, _ = load("nginx_access.log")
    by_status = {record.attributes["http.status_code"]: record.severity for record in records}
    assert by_status["200"] is Severity.INFO
    assert by_status["401"] is Severity.WARN
    assert by_status["404"] is Severity.WARN
    assert by_status["502"] is Severity.ERROR
    assert by_status["504"] is Severity.ERROR
    first = records[0]
    assert first.message == '"GET /healthz HTTP/1.1" 200 2'
    assert first.attributes["http.method"] == "GET"
    assert first.attributes["url.path"] == "/healthz"
    assert first.attributes["user_agent"] == "kube-probe/1.28"
    assert first.attributes["extra"] == "0.001"
    assert records[4].attributes["user.name"] == "alice"


def test_nginx_error_context_goes_to_attributes() -> None:
    records, _ = load("nginx_error.log")
    refused = records[3]
    assert refused.severity is Severity.ERROR
    assert refused.message == "connect() failed (111: Connection refused) while connecting to upstream"
    assert refused.attributes["upstream"] == "http://10.42.2.31:8080/api/orders"
    assert refused.attributes["request"] == "POST /api/orders HTTP/1.1"
    assert refused.attributes["connection"] == "1843"
    assert [record.severity for record in records[7:]] == [Severity.FATAL] * 3  # crit, alert, emerg


def test_apache_error_modules_and_levels() -> None:
    records, _ = load("apache_error.log")
    assert records[3].logger == "proxy_http"
    assert records[3].attributes["client.address"] == "10.42.5.2:51234"
    assert records[4].severity is Severity.WARN
    assert records[0].timestamp == datetime(2024, 3, 1, 9, 59, 40, 112233, tzinfo=UTC)
    assert records[-1].logger is None  # Apache 2.2 layout
    assert records[-1].message == "File does not exist: /var/www/html/favicon.ico"


def test_syslog_3164_uses_the_assumed_year_and_pri() -> None:
    token = ASSUMED_YEAR.set(2024)
    try:
        records, _ = load("syslog_3164.log")
    finally:
        ASSUMED_YEAR.reset(token)
    assert records[0].timestamp == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert records[0].service == "systemd"
    assert records[0].host == "web-01"
    assert records[0].attributes["pid"] == "1"
    assert records[4].service == "kernel"
    assert records[11].severity is Severity.INFO  # <86> = authpriv.info
    assert records[11].attributes["syslog.facility"] == "authpriv"


def test_syslog_5424_structured_data_and_offsets() -> None:
    records, _ = load("syslog_5424.log")
    assert records[3].severity is Severity.FATAL  # <129> local0.alert
    assert records[1].attributes["meta@32473.status"] == "200"
    assert records[4].timestamp == datetime(2024, 3, 1, 9, 0, 6, 700000, tzinfo=UTC)  # +01:00
    assert records[7].timestamp is None
    assert records[8].attributes["quote@32473.text"] == 'a "quoted" value ] here'


def test_ecs_fields() -> None:
    records, _ = load("ecs.jsonl")
    first = records[0]
    assert (first.service, first.host, first.logger) == (
        "checkout",
        "ip-10-0-3-17",
        "com.example.checkout.CheckoutApplication",
    )
    assert first.attributes["process.thread.name"] == "main"
    nested = records[4]
    assert nested.severity is Severity.WARN
    assert nested.logger == "com.zaxxer.hikari.pool.HikariPool"
    assert nested.service == "checkout"
    assert nested.attributes["host.ip"] == '["10.0.3.17"]'
    assert records[7].severity is Severity.FATAL


def test_otel_fields() -> None:
    records, _ = load("otel.jsonl")
    first = records[0]
    assert first.timestamp == datetime(2024, 3, 1, 10, 0, 0, 120000, tzinfo=UTC)
    assert (first.service, first.pod, first.host) == ("checkout", "checkout-7d9f8b6c5-x2x9k", "node-a1")
    assert first.logger == "com.example.checkout"
    assert first.attributes["Attributes.order.id"] == "10023"
    otlp = records[2]
    assert otlp.message == "retry budget at 80%"
    assert otlp.severity is Severity.WARN
    assert otlp.pod == "checkout-7d9f8b6c5-p4q7m"
    assert otlp.attributes["attributes.peer.service"] == "payments-api"
    assert records[3].severity is Severity.FATAL  # severityNumber 21 only
    assert records[3].service == "payments-api"  # from the pod name
    assert records[4].severity is Severity.DEBUG
    assert records[5].severity is Severity.ERROR  # unknown text, number 18


def test_bunyan_and_pino_levels() -> None:
    records, _ = load("bunyan.jsonl")
    assert [record.severity for record in records] == [
        Severity.INFO, Severity.DEBUG, Severity.INFO, Severity.WARN, Severity.ERROR,
        Severity.INFO, Severity.FATAL, Severity.TRACE,
    ]  # fmt: skip
    assert records[0].service == "notification-svc"
    assert records[0].host == "notification-svc-6b7c9d8f5-mx2lp"
    assert records[4].attributes["err.code"] == "ECONNREFUSED"
    assert records[5].timestamp == datetime(2024, 3, 1, 10, 0, 23, tzinfo=UTC)  # epoch millis


def test_gcp_fields() -> None:
    records, _ = load("gcp.jsonl")
    assert records[0].message == "Started order processor"
    assert records[0].service == "order-processor"
    assert records[0].pod == "order-processor-7b9c6d5f8-2kdlq"
    assert records[1].message == "ERROR: could not serialize access due to concurrent update"
    assert records[2].severity is Severity.WARN
    assert records[3].severity is Severity.UNSPECIFIED  # DEFAULT
    assert records[3].service == "checkout"  # workload of the pod
    assert records[4].service == "pricing"  # Cloud Run service_name
    assert records[4].severity is Severity.FATAL
    assert records[5].service == "redis"  # statefulset pod redis-0
    assert records[6].service == "fluentd"  # daemonset pod


def test_fluentbit_kubernetes_metadata_and_inner_lines() -> None:
    records, _ = load("fluentbit_k8s.jsonl")
    assert len(records) == 6
    first = records[0]
    assert (first.service, first.pod, first.host) == ("checkout", "checkout-7d9f8b6c5-x2x9k", "node-a1")
    assert first.severity is Severity.INFO
    assert first.message == "checkout listening on :8080"
    assert first.timestamp == datetime(2024, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)  # the inner time wins
    assert first.attributes["kubernetes.namespace_name"] == "shop"
    trace = records[1]
    assert trace.lines == 3
    assert trace.message.endswith("\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)")
    assert records[2].severity is Severity.WARN  # JSON inside "log"
    assert records[2].service == "inventory"
    assert records[3].service == "redis"
    assert records[5].service == "cart"  # kubernetes.labels.app beats the pod name
    assert records[5].pod == "cart-api-66b8c9d7f-zt7wq"


def test_logfmt_fields() -> None:
    records, _ = load("logfmt.log")
    failed = records[3]
    assert failed.severity is Severity.ERROR
    assert failed.service == "gateway"
    assert failed.message == "upstream request failed"
    assert failed.attributes["err"] == "dial tcp 10.42.2.31:8080: connect: connection refused"
    assert records[7].severity is Severity.ERROR  # grafana's "eror"
    assert records[7].logger == "alerting.notifier.slack"
    assert records[8].severity is Severity.FATAL


def test_timestamp_then_logfmt_takes_the_pairs() -> None:
    records, _ = load("iso_logfmt.log")
    assert len(records) == 7
    failed = records[2]
    assert failed.timestamp == datetime(2026, 3, 2, 10, 15, 4, 123000, tzinfo=UTC)
    assert failed.severity is Severity.ERROR
    assert failed.severity_text == "error"
    assert failed.service == "payments"
    assert failed.message == "payment failed"
    assert failed.attributes == {"err": "context deadline exceeded", "order_id": "ord_81723", "attempt": "3"}
    assert records[1].severity is Severity.DEBUG
    assert records[3].severity is Severity.WARN
    assert records[4].attributes["upstream"] == "https://psp.example.net/v1/captures"
    # a line whose rest is not key=value pairs keeps it as the message
    assert records[5].severity is Severity.UNSPECIFIED
    assert records[5].message == "worker heartbeat missed for 3 intervals"
    # a colon in the message does not make "level=error" a syslog host and "msg=..." a syslog tag
    lines = ['2026-03-02T10:15:04.123Z level=error msg="payment failed: card declined" service=payments'] * 3
    assert detect_format(lines) == "iso"
    record = next(read_logs(lines))
    assert (record.severity, record.service) == (Severity.ERROR, "payments")
    assert record.message == "payment failed: card declined"


def test_docker_json_file() -> None:
    records, _ = load("docker_json.log")
    assert len(records) == 6
    assert records[1].lines == 4
    assert records[1].logger == "c.e.pricing.FxRateClient"
    assert records[1].attributes["stream"] == "stderr"
    assert records[2].timestamp == datetime(2024, 3, 1, 10, 0, 5, tzinfo=UTC)  # the runtime's time
    assert records[3].severity is Severity.ERROR
    assert records[4].message == "a very long line that docker split into two pieces at 16 KiB"
    assert records[4].lines == 2
    assert records[5].attributes["attrs.tag"] == "pricing"


def test_cri_partial_lines_and_stack_traces() -> None:
    records, _ = load("cri.log")
    assert len(records) == 5
    assert records[1].severity is Severity.INFO
    assert records[2].lines == 4
    assert records[2].message.endswith("\t... 31 more")
    assert records[3].message == "this message was written in two parts by the runtime"
    assert records[3].lines == 3  # the P line, its F line and the empty line after
    assert records[4].severity is Severity.FATAL
    assert records[4].message.endswith("\t/src/main.go:12 +0x3a")


def test_cri_file_path_gives_the_pod(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "log" / "containers"
    folder.mkdir(parents=True)
    path = folder / f"checkout-7d9f8b6c5-x2x9k_shop_checkout-{'ab12' * 16}.log"
    path.write_bytes((FIXTURES / "cri.log").read_bytes())
    records = list(read_logs(path))
    assert {record.pod for record in records} == {"checkout-7d9f8b6c5-x2x9k"}
    assert {record.service for record in records} == {"checkout"}


def test_kibana_csv_export() -> None:
    records, _ = load("kibana_export.csv")
    assert len(records) == 8
    assert records[0].line == 2
    assert records[0].timestamp == datetime(2024, 3, 1, 10, 0, 0, 120000, tzinfo=UTC)
    assert (records[0].service, records[0].host) == ("checkout", "ip-10-0-3-17")
    assert records[2].lines == 3
    assert records[2].message.count("\n") == 2
    assert records[4].pod is None  # "-" is empty
    assert records[7].message == 'Background saving error: MISCONF, "disk full"'
    assert records[7].service == "redis"


def test_hdfs_and_epoch_timestamps() -> None:
    hdfs, _ = load("hdfs.log")
    assert hdfs[0].timestamp == datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC)
    assert hdfs[0].logger == "dfs.DataNode$PacketResponder"
    assert hdfs[0].attributes["pid"] == "148"
    assert hdfs[7].lines == 4
    epoch, _ = load("epoch.log")
    assert epoch[2].timestamp == datetime(2024, 3, 1, 10, 0, 3, 125000, tzinfo=UTC)
    assert epoch[6].timestamp == datetime(2024, 3, 1, 10, 0, 7, 123000, tzinfo=UTC)  # millis
    assert epoch[3].severity is Severity.ERROR


def test_postgres_levels_and_continuations() -> None:
    records, _ = load("postgres.log")
    assert records[0].severity is Severity.INFO  # LOG
    assert records[4].severity is Severity.ERROR
    assert records[5].lines == 3
    assert records[8].severity is Severity.FATAL
    assert records[12].severity is Severity.WARN
    assert records[0].attributes["pid"] == "1"


def test_glog_levels() -> None:
    token = ASSUMED_YEAR.set(2024)
    try:
        records, _ = load("glog.log")
    finally:
        ASSUMED_YEAR.reset(token)
    assert [record.severity_text for record in records] == ["INFO"] * 3 + [
        "WARNING",
        "ERROR",
        "INFO",
        "ERROR",
        "FATAL",
    ]
    assert records[0].timestamp == datetime(2024, 3, 1, 10, 0, 0, 101123, tzinfo=UTC)
    assert records[0].logger == "main.go:48"


def test_kubectl_output_mixing_json_and_text() -> None:
    records, issues = load("kubectl_mixed.log")
    assert [record.message for record in records[:2]] == [
        "Starting payments-api (build 7f3a91c)",
        "loading config from /etc/payments/config.yaml",
    ]
    assert records[2].logger == "payments.http"
    assert records[5].message == "WARNING: connection to card network gateway is degraded"
    assert records[7].message == '{"level":"error","ts":"2024-03-01T10:00:11.0'
    assert [str(issue) for issue in issues] == [
        f"{FIXTURES / 'kubectl_mixed.log'}:8: malformed JSON; kept as plain text"
    ]
    assert records[8].severity is Severity.FATAL
    assert records[8].lines == 5
