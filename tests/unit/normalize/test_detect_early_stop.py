"""detect_format stops trying formats once one fits every sample line; the answer is the one that trying
every format gives."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.normalize.csv_export import csv_fits
from core.normalize.detect import _MAX_SAMPLE_CHARS, SAMPLE_LINES, detect_format
from core.normalize.formats import REGISTRY


def detect_trying_every_format(sample: list[str]) -> str:
    """The rule of detect_format written out in full: every format's count, then the first near the best."""
    lines = [line[:_MAX_SAMPLE_CHARS] for line in sample[: SAMPLE_LINES * 2] if line.strip()][:SAMPLE_LINES]
    if not lines:
        return "plain"
    if csv_fits(lines):
        return "csv"
    counts = [
        (entry.id, sum(1 for line in lines if entry.fits(line)), entry.share)
        for entry in REGISTRY
        if entry.fits is not None
    ]
    best = max(count for _, count, _ in counts)
    for format_id, count, share in counts:
        if count > 0 and count >= best * share:
            return format_id
    return "plain"


# Lines of many formats, so that samples fit one format wholly, mostly, or several at once.
SAMPLE_LINE = st.sampled_from(
    [
        "2024-05-14T13:55:00.142Z INFO  checkout-7f9c4 order placed",
        "2024-05-14 13:55:00,142 [main] ERROR com.shop.Cart - failed",
        "2024-05-14 13:55:00,142 - payments.db - WARNING - slow query",
        "2024-05-14 13:55:00.142 UTC [4242] LOG:  checkpoint starting",
        "2024-05-14T13:55:00Z level=info msg=started",
        'time=2024-05-14T13:55:00Z level=error msg="boom" user=7',
        '{"time":"2024-05-14T13:55:00Z","level":"info","msg":"ok"}',
        '{"log":"hello\\n","stream":"stdout","time":"2024-05-14T13:55:00.1Z"}',
        "2024-05-14T13:55:00.142Z stdout F hello",
        "<34>1 2024-05-14T13:55:00Z host app 1 ID47 - started",
        "May 14 13:55:00 web01 sshd[42]: Accepted publickey",
        '10.0.0.1 - - [14/May/2024:13:55:00 +0000] "GET / HTTP/1.1" 200 12',
        "2024/05/14 13:55:00 [error] 12#12: *1 connect() failed",
        "[Tue May 14 13:55:00.123 2024] [core:error] [pid 12] AH00001: boom",
        "E0514 13:55:00.123456    1 controller.go:114] sync failed",
        "081109 203615 148 INFO dfs.DataNode$PacketResponder: done",
        "1715694900 ERROR disk full",
        "WARNING:root:disk almost full",
        "\tat com.shop.Cart.load(Cart.java:88)",
        "plain words with no header",
        "",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.lists(SAMPLE_LINE, min_size=0, max_size=30))
def test_detect_format_matches_trying_every_format(sample: list[str]) -> None:
    assert detect_format(sample) == detect_trying_every_format(sample)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=SAMPLE_LINE, count=st.integers(1, 30))
def test_detect_format_of_uniform_samples(line: str, count: int) -> None:
    sample = [line] * count
    assert detect_format(sample) == detect_trying_every_format(sample)
