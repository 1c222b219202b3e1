"""Attachment handling: which files, downloading (token, cap, gzip), and logs vs metrics."""

from __future__ import annotations

import gzip
import json

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.files import (
    Attachments,
    DownloadRefusedError,
    FileTooLargeError,
    SlackFile,
    classify_content,
    collect_files,
    decompress,
    download,
    gather_attachments,
    looks_binary,
    to_engine_input,
    unsupported_reason,
)
from tests.slack.datasets import orders_api_log, orders_api_metrics_csv
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack


@given(st.binary(max_size=20_000))
def test_decompress_round_trips_gzip_and_passes_plain_bytes(data: bytes) -> None:
    assert decompress(gzip.compress(data), max_bytes=20_000) == data
    if not data.startswith(b"\x1f\x8b"):
        assert decompress(data, max_bytes=1) == data


def test_decompress_reads_every_member_and_enforces_the_cap() -> None:
    two = gzip.compress(b"first\n") + gzip.compress(b"second\n")
    assert decompress(two, max_bytes=100) == b"first\nsecond\n"
    bomb = gzip.compress(b"a" * 1_000_000)
    assert len(bomb) < 5000
    with pytest.raises(FileTooLargeError):
        decompress(bomb, max_bytes=100_000)
    with pytest.raises(ValueError, match="truncated"):
        decompress(gzip.compress(b"x" * 1000)[:-12], max_bytes=10_000)


@given(name=st.text(max_size=60), head=st.text(max_size=3000))
def test_classify_content_never_fails(name: str, head: str) -> None:
    assert classify_content(name, head) in {"logs", "metrics"}


@given(
    st.lists(
        st.fixed_dictionaries(
            {"text": st.text(max_size=20)},
            optional={
                "files": st.lists(
                    st.fixed_dictionaries(
                        {"id": st.sampled_from(["F1", "F2", "F3", ""])},
                        optional={
                            "name": st.text(max_size=20),
                            "mode": st.sampled_from(["hosted", "tombstone"]),
                        },
                    ),
                    max_size=4,
                )
            },
        ),
        max_size=6,
    )
)
def test_collect_files_dedupes_and_skips_deleted(messages: list[dict]) -> None:
    files = collect_files(messages)
    ids = [f.id for f in files]
    assert len(ids) == len(set(ids)) and "" not in ids
    assert all(f.mode != "tombstone" for f in files)


def test_classify_by_name_extension_and_content() -> None:
    assert classify_content("node-metrics.json", "[]") == "metrics"
    assert (
        classify_content("query.json", '{"status":"success","data":{"resultType":"matrix","result":[]}}')
        == "metrics"
    )
    assert classify_content("latency.csv", "timestamp,p99_ms\n2026-05-02T14:00:00Z,70\n") == "metrics"
    assert classify_content("kibana-export.csv", '"@timestamp","host","message"\n') == "logs"
    assert classify_content("points.json", '[{"timestamp": 1, "value": 2}]') == "metrics"
    assert classify_content("events.json", '[{"timestamp": 1, "msg": "boom"}]') == "logs"
    assert classify_content("app.log", "2026-05-02 ERROR boom") == "logs"


def test_unsupported_files_are_known_from_metadata() -> None:
    def file(name: str, mimetype: str = "text/plain") -> SlackFile:
        return SlackFile(id="F1", name=name, mimetype=mimetype, url_private_download="http://127.0.0.1/x")

    assert unsupported_reason(file("screenshot.png", "image/png"))
    assert unsupported_reason(file("postmortem.pdf", "application/pdf"))
    assert unsupported_reason(file("heap.hprof", "application/octet-stream"))
    assert unsupported_reason(file("app.log")) is None
    assert unsupported_reason(file("app.log.gz", "application/gzip")) is None
    assert "download link" in (unsupported_reason(SlackFile(id="F2", name="x.log")) or "")


def test_engine_input_from_each_kind() -> None:
    out = Attachments()
    to_engine_input("orders-api.log.gz", gzip.compress(orders_api_log().encode()), max_bytes=10**7, into=out)
    to_engine_input("orders-metrics.csv", orders_api_metrics_csv().encode(), max_bytes=10**7, into=out)
    prom = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "up", "job": "orders"},
                    "values": [[1_780_000_000, "1"], [1_780_000_060, "0"]],
                }
            ],
        },
    }
    to_engine_input("prom.json", json.dumps(prom).encode(), max_bytes=10**7, into=out)
    to_engine_input("blob.log", bytes(range(256)) * 4, max_bytes=10**7, into=out)
    to_engine_input("empty.log", b"\n\n", max_bytes=10**7, into=out)
    to_engine_input("broken.log.gz", gzip.compress(b"x" * 500)[:-10], max_bytes=10**7, into=out)
    to_engine_input("nothing-metrics.csv", b"timestamp,value\nnot-a-time,abc\n", max_bytes=10**7, into=out)

    assert [log.name for log in out.logs] == ["orders-api.log"]
    assert len(out.logs[0].lines) == orders_api_log().count("\n")
    names = {s.name for s in out.metrics}
    assert {"orders_api_p99_latency_ms", "orders_db_connections_active", "up"} <= names
    assert {s.name: s.reason for s in out.skipped} == {
        "blob.log": "binary content, not text logs or metrics",
        "empty.log": "the file is empty",
        "broken.log.gz": "not a readable gzip file",
        "nothing-metrics.csv": "no metric series could be read from it",
    }


def test_binary_sniffing() -> None:
    assert looks_binary(b"\x00\x01\x02")
    assert not looks_binary("héllo wörld\n".encode())
    assert not looks_binary(b"ok" + "é".encode()[:1])  # a UTF-8 sequence cut at the sniff boundary


async def test_download_uses_the_bot_token_and_stops_at_the_cap(fake_slack: FakeSlack) -> None:
    content = orders_api_log().encode()
    raw = fake_slack.add_file("orders-api.log", content)
    async with aiohttp.ClientSession() as session:
        file = SlackFile.model_validate(raw)
        assert await download(session, file, token=BOT_TOKEN, max_bytes=10**7, timeout_seconds=5) == content
        assert fake_slack.download_auth[-1] == f"Bearer {BOT_TOKEN}"
        # Slack's size field can be absent or wrong: the cap holds while streaming.
        unsized = file.model_copy(update={"size": None})
        with pytest.raises(FileTooLargeError):
            await download(session, unsized, token=BOT_TOKEN, max_bytes=10_000, timeout_seconds=5)
        with pytest.raises(FileTooLargeError):
            await download(session, file, token=BOT_TOKEN, max_bytes=10_000, timeout_seconds=5)
        with pytest.raises(DownloadRefusedError, match="web page"):
            await download(session, file, token="xoxb-wrong", max_bytes=10**7, timeout_seconds=5)

        gathered = await gather_attachments(
            session,
            [
                file,
                SlackFile.model_validate(fake_slack.add_file("shot.png", b"\x89PNG", mimetype="image/png")),
            ],
            token=BOT_TOKEN,
            max_bytes=10**7,
            timeout_seconds=5,
        )
        assert [log.name for log in gathered.logs] == ["orders-api.log"]
        assert [s.name for s in gathered.skipped] == ["shot.png"]
