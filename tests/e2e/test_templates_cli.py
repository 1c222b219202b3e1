"""`faultmaven templates` end to end, as a separate process, on the fixture logs."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "faultmaven.cli", "templates", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )


def _jsonl(out: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.decode().splitlines()]


def test_jsonl_field_contract_order_and_multi_line_records() -> None:
    done = _run("--format", "jsonl", str(FIXTURES / "app.log"))
    assert done.returncode == 0, done.stderr
    rows = _jsonl(done.stdout)
    physical = (FIXTURES / "app.log").read_text().splitlines()
    assert all(set(row) == {"line", "lines", "template_id", "template"} for row in rows)
    # records in input order, covering every physical line exactly once
    lines = [(row["line"], row["lines"]) for row in rows]
    assert lines == sorted(lines)
    assert sum(int(n) for _, n in lines) == len(physical)  # type: ignore[call-overload]
    by_line = {row["line"]: row for row in rows}
    trace = by_line[5]
    assert trace["lines"] == 5
    assert trace["template"] == "Unhandled exception while processing request <UUID>"
    assert by_line[14]["lines"] == 4
    assert by_line[14]["template_id"] == trace["template_id"]
    assert by_line[2]["template"] == "Order <NUM> created for customer <NUM> with <NUM> items"
    # the final template of a cluster is reported for every record of it, also the first
    retry = [row for row in rows if str(row["template"]).startswith("Retrying call")]
    assert len(retry) == 2 and retry[0]["template"] == retry[1]["template"]
    assert len(str(trace["template_id"])) == 12


def test_jsonl_names_the_source_when_given_several_files_and_reads_stdin() -> None:
    access = (FIXTURES / "access.log").read_bytes()
    done = _run("--format", "jsonl", str(FIXTURES / "auth.log"), "-", stdin=access)
    assert done.returncode == 0, done.stderr
    rows = _jsonl(done.stdout)
    sources = [row["source"] for row in rows]
    assert sources == [str(FIXTURES / "auth.log")] * 9 + ["<stdin>"] * 7
    auth = rows[:9]
    assert auth[0]["template"] == auth[1]["template"] == auth[3]["template"]
    assert auth[0]["template"] == "Failed password for <*> from <IP> port <NUM> ssh2"
    assert auth[2]["template"] == auth[6]["template"] == "Invalid user <*> from <IP> port <NUM>"
    access_rows = rows[9:]
    assert [row["line"] for row in access_rows] == list(range(1, 8))
    gets = {row["template"] for row in access_rows[:2]}
    assert len(gets) == 1 and access_rows[2]["template"] != access_rows[0]["template"]


def test_text_table_is_most_frequent_first_with_an_example() -> None:
    done = _run(str(FIXTURES / "app.log"))
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().splitlines()
    assert out[0].split() == ["COUNT", "TEMPLATE_ID", "TEMPLATE"]
    first = out[1].split(maxsplit=2)
    assert first[0] == "4"
    assert first[2] == "Order <NUM> created for customer <NUM> with <NUM> items"
    assert out[2].strip() == "e.g. Order 100231 created for customer 4411 with 3 items"
    counts = [int(line.split()[0]) for line in out[1:-1:2]]
    assert counts == sorted(counts, reverse=True)
    assert out[-1] == "12 records, 6 templates"


def test_parse_issues_go_to_stderr_and_valid_input_is_kept(tmp_path: Path) -> None:
    good = (FIXTURES / "auth.log").read_bytes()
    broken = tmp_path / "auth.log.gz"
    broken.write_bytes(gzip.compress(good)[:-12])  # a truncated gzip stream
    done = _run("--format", "jsonl", str(broken))
    assert done.returncode == 0
    stderr = done.stderr.decode().strip().splitlines()
    assert stderr and all(line.startswith(f"{broken}:") for line in stderr)
    rows = _jsonl(done.stdout)
    assert rows and rows[0]["template"] == "Failed password for <*> from <IP> port <NUM> ssh2"


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    missing = _run(str(tmp_path / "nope.log"))
    assert missing.returncode == 2
    assert b"nope.log" in missing.stderr and b"Traceback" not in missing.stderr
    unknown = _run("--log-format", "cobol", str(FIXTURES / "app.log"))
    assert unknown.returncode == 2
    assert b"--log-format" in unknown.stderr


def test_explicit_log_format_is_used() -> None:
    done = _run("--format", "jsonl", "--log-format", "plain", str(FIXTURES / "auth.log"))
    assert done.returncode == 0, done.stderr
    rows = _jsonl(done.stdout)
    # taken as plain text, the syslog header is part of the message and gets masked too
    assert rows[0]["template"].startswith("Mar <NUM> <TIME> web01 sshd[<NUM>]:")  # type: ignore[union-attr]
