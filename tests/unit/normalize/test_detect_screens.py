"""Detection's shortcuts give what trying every format's ``fits`` on every line gives: a format's ``starts``
test passes every line the format fits, ``fits_iso`` reads parse_iso's fields the way ``fits`` does, and
the reader's reuse of detection's parse_iso fields builds the records a fresh parse builds."""

from __future__ import annotations

from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.normalize import read_logs
from core.normalize.csv_export import csv_fits
from core.normalize.detect import detect_format, detect_parsing
from core.normalize.formats import REGISTRY
from core.normalize.text_formats import parse_iso

# Lines that fit one format or nearly do (a prefix, a missing piece), so that the screens meet both sides.
HEADS = [
    "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4 order placed",
    "2024-05-14 13:55:00,142 [main] ERROR com.shop.Cart - failed",
    "[2024-05-14 13:55:00,142] [pool-1] WARN  com.shop.Pay: slow",
    "2024-05-14 13:55:00,142 - payments.db - WARNING - slow query",
    "[2024-05-14 13:55:00,142] - payments.db - ERROR - lost",
    "2024-05-14 13:55:00.142 UTC [4242] LOG:  checkpoint starting",
    "2024-05-14 13:55:00 UTC [4242] ERROR: no two spaces",
    "2024-05-14T13:55:00Z level=info msg=started",
    "2024-05-14T13:55:00+02:00 web01 nginx[12]: upstream timed out",
    "2024-02-30T13:55:00Z ERROR impossible date",
    'time=2024-05-14T13:55:00Z level=error msg="boom" user=7',
    '{"time":"2024-05-14T13:55:00Z","level":"info","msg":"ok"}',
    '  {"log":"hello\\n","stream":"stdout","time":"2024-05-14T13:55:00.1Z"}',
    "2024-05-14T13:55:00.142Z stdout F hello",
    "2024-05-14T13:55:00.142Z stderr P part",
    "2024-05-14T13:55:00.142Z standard F hello",
    "<34>1 2024-05-14T13:55:00Z host app 1 ID47 - started",
    "<34>May 14 13:55:00 web01 sshd[42]: Accepted publickey",
    "May 14 13:55:00 web01 sshd[42]: Accepted publickey",
    "Oct  1 13:55:00 web01 kernel: oops",
    '10.0.0.1 - - [14/May/2024:13:55:00 +0000] "GET / HTTP/1.1" 200 12',
    "2024/05/14 13:55:00 [error] 12#12: *1 connect() failed",
    "[Tue May 14 13:55:00.123 2024] [core:error] [pid 12] AH00001: boom",
    "E0514 13:55:00.123456    1 controller.go:114] sync failed",
    "I0514 13:55:00.123456    1 main.go:1] started",
    "081109 203615 148 INFO dfs.DataNode$PacketResponder: done",
    "1715694900 ERROR disk full",
    "[1715694900.123] WARN slow",
    "WARNING:root:disk almost full",
    "CRITICAL:payments:down",
    "\tat com.shop.Cart.load(Cart.java:88)",
    "plain words with no header",
    "٢٠٢٤-05-14T13:55:00Z INFO non-ASCII digits",
]
LINE = st.one_of(
    st.sampled_from(HEADS),
    st.builds(lambda head, cut: head[:cut], st.sampled_from(HEADS), st.integers(1, 40)),
    st.builds(
        lambda pad, head: pad + head, st.sampled_from([" ", "\t", "[", "<1>", "x"]), st.sampled_from(HEADS)
    ),
    st.text(min_size=1, max_size=60),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=LINE)
def test_starts_passes_every_line_a_format_fits(line: str) -> None:
    if not line.strip():
        return
    for entry in REGISTRY:
        if entry.fits is not None and entry.starts is not None and entry.fits(line):
            assert entry.starts(line[0]), (entry.id, line)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=LINE)
def test_fits_iso_reads_the_fields_as_fits_does(line: str) -> None:
    fields = parse_iso(line)
    for entry in REGISTRY:
        if entry.fits is not None and entry.fits_iso is not None:
            assert entry.fits(line) == (fields is not None and entry.fits_iso(fields)), (entry.id, line)


def test_the_iso_formats_read_parse_iso() -> None:
    with_test = {entry.id for entry in REGISTRY if entry.fits_iso is not None}
    assert with_test == {"log4j", "iso"}
    assert all(entry.parse is parse_iso for entry in REGISTRY if entry.id in with_test)


def every_format_on_every_line(sample: list[str]) -> str:
    """Detection's rule without its shortcuts: each format's ``fits`` on each line, then the first format
    whose count is near the best."""
    lines = [line[:4096] for line in sample[:400] if line.strip()][:200]
    if not lines:
        return "plain"
    if csv_fits(lines):
        return "csv"
    counts = [(e.id, sum(map(e.fits, lines)), e.share) for e in REGISTRY if e.fits is not None]
    best = max(count for _, count, _ in counts)
    return next((i for i, count, share in counts if count > 0 and count >= best * share), "plain")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.lists(LINE, min_size=0, max_size=25))
def test_detect_parsing_gives_detect_format_and_parse_iso(sample: list[str]) -> None:
    fmt, parsed = detect_parsing(sample)
    assert fmt == detect_format(sample) == every_format_on_every_line(sample)
    for line, fields in parsed.items():
        assert line in sample
        assert fields == parse_iso(line)


# Headers of the ISO-parsed formats, continuation lines, blank lines, repeats and an over-long line: the
# reader takes detection's fields for the first occurrence of a sample line and parses everything else.
ISO_LINE = st.one_of(
    st.sampled_from(
        [
            "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4 order placed",
            "2024-05-14T13:55:01Z ERROR checkout-7f9c4 java.lang.IllegalStateException: boom",
            "2024-05-14 13:55:02,142 [main] ERROR com.shop.Cart - failed",
            "2024-05-14 13:55:03.142 UTC [4242] LOG:  checkpoint starting",
            "2024-05-14T13:55:04Z pid=7 k=v",
            "\tat com.shop.Cart.load(Cart.java:88)",
            "Caused by: java.io.IOException: reset",
            "",
            "no header at all",
            "2024-05-14T13:55:05Z WARN  " + "x" * 5000,
        ]
    ),
    st.builds("2024-05-14T13:55:{:02d}Z INFO  svc message {}".format, st.integers(0, 59), st.integers(0, 9)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(ISO_LINE, min_size=1, max_size=260))
def test_reusing_detection_fields_builds_the_same_records(lines: list[str]) -> None:
    fmt = detect_format(lines)
    if fmt not in ("iso", "log4j", "postgres"):
        return
    detected = [r.model_dump() for r in read_logs(lines, name="t")]
    forced = [r.model_dump() for r in read_logs(lines, name="t", fmt=fmt)]  # (no detection, no reuse)
    assert detected == forced


def test_reuse_with_repeated_lines_gives_each_record_its_own_attributes() -> None:
    line = "2024-05-14 13:55:02,142 [main] ERROR com.shop.Cart - failed"
    records = list(read_logs([line, line, line], name="t"))
    assert records[0].format == "log4j"
    assert [r.attributes for r in records] == [{"thread": "main"}] * 3
    assert records[0].attributes is not records[1].attributes


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    heads=st.lists(st.sampled_from(HEADS), min_size=1, max_size=3, unique=True),
    sizes=st.lists(st.integers(0, 24), min_size=3, max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_near_ties_are_decided_as_without_shortcuts(
    heads: list[str], sizes: list[int], order: Random
) -> None:
    """Samples of two or three formats in shares around the 0.9 and 0.5 thresholds, in any order (the
    first line gives detection its bound, and counting stops once a format cannot reach it)."""
    sample = [head for head, size in zip(heads, sizes, strict=False) for _ in range(size)]
    order.shuffle(sample)
    assert detect_format(sample) == every_format_on_every_line(sample)


def test_a_count_exactly_at_the_share_of_the_best_wins() -> None:
    log4j = "2024-05-14 13:55:00,142 [main] ERROR com.shop.Cart - failed"  # fits log4j and iso
    iso = "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4 order placed"  # iso only
    for sample in ([iso] + [log4j] * 9, [log4j] * 9 + [iso], [log4j] * 4 + [iso] + [log4j] * 5):
        assert detect_format(sample) == every_format_on_every_line(sample) == "log4j"  # 9 >= 10 * 0.9
    docker = '{"log":"hello\\n","stream":"stdout","time":"2024-05-14T13:55:00.1Z"}'  # docker_json and jsonl
    plain_json = '{"time":"2024-05-14T13:55:00Z","level":"info","msg":"ok"}'  # jsonl only
    for sample in ([plain_json] * 6 + [docker] * 6, [docker] * 6 + [plain_json] * 6):
        assert detect_format(sample) == every_format_on_every_line(sample) == "docker_json"  # 6 >= 12 * 0.5
    assert detect_format([plain_json] * 7 + [docker] * 5) == "jsonl"
