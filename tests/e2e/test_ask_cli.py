"""`faultmaven ask` end to end: the installed console script as a separate process, embedded stores in a
temporary data directory, the bundled example incident as input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "faultmaven"
EXAMPLE = ROOT / "examples" / "checkout-incident"
LEDGER = ROOT / "tests" / "scenarios" / "05-ledger-cert-expired"

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed in .venv")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only this test's settings: no FAULTMAVEN_* (an LLM, Redis...) from the caller's environment, and the
    # working directory is the tmp dir so no .env file is picked up either.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTMAVEN_", "SLACK_"))}
    env.update({"FAULTMAVEN_DATA_DIR": str(tmp_path / "data"), "FAULTMAVEN_LOG_FORMAT": "json"})
    return subprocess.run(
        [str(SCRIPT), "ask", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def test_json_answer_with_logs_and_metrics(tmp_path: Path) -> None:
    logs = [EXAMPLE / name for name in ("checkout.log", "inventory.log", "payments.log", "nginx-error.log")]
    args = ["why is checkout failing?", "--format", "json", "--metrics", str(EXAMPLE / "metrics.csv")]
    for path in logs:
        args += ["--logs", str(path)]
    answer = as_json(run(tmp_path, *args))
    assert answer["kind"] == "query_and_data"
    assert answer["engine"] == "deterministic" and answer["turn"] == 1
    report = answer["analysis"]
    assert report is not None
    assert {line["source"] for cause in answer["root_causes"] for line in cause["evidence"]["lines"]} <= {
        str(p) for p in logs
    }
    assert "12 metric series" in report["summary"], "the metrics file was read"
    assert any(a["source"] == "metrics" for a in report["anomalies"])
    categories = [c["category"] for c in answer["root_causes"]]
    assert "memory_exhaustion" in categories[:3], categories  # the example's ground truth
    assert answer["next_steps"] and all(s["id"].startswith("ns-") for s in answer["next_steps"])
    assert (tmp_path / "data").is_dir(), "the embedded stores live in FAULTMAVEN_DATA_DIR"


def test_text_answer_and_a_session_continued_across_invocations(tmp_path: Path) -> None:
    first = run(tmp_path, "why are billing and invoicing failing?", "--logs", str(LEDGER / "billing.log"))
    assert first.returncode == 0, first.stderr[-2000:]
    text = first.stdout
    assert "Root causes:" in text and "Next steps:" in text
    assert "tls_certificate" in text
    header = next(line for line in text.splitlines() if line.startswith("session "))
    session_id = header.split()[1]
    assert "turn 1" in header and "query_and_data" in header and "engine: deterministic" in header
    assert not first.stdout.lstrip().startswith("{"), "text, not JSON"

    second = as_json(
        run(
            tmp_path,
            "what should I check on ledger?",
            "--logs",
            str(LEDGER / "ledger.log"),
            "--session",
            session_id,
            "--format",
            "json",
        )
    )
    assert second["session_id"] == session_id and second["turn"] == 2
    assert "Turn 2 of this session." in second["insights"]

    third = as_json(run(tmp_path, "what does certificate has expired mean?", "--format", "json"))
    assert third["session_id"] != session_id and third["turn"] == 1
    assert third["kind"] == "query_only" and third["analysis"] is None
    assert third["root_causes"][0]["category"] == "tls_certificate"


def test_gzipped_logs_are_read(tmp_path: Path) -> None:
    packed = tmp_path / "billing.log.gz"
    packed.write_bytes(gzip.compress((LEDGER / "billing.log").read_bytes()))
    answer = as_json(run(tmp_path, "", "--logs", str(packed), "--format", "json"))
    assert answer["kind"] == "data_only"
    assert answer["analysis"]["records"] > 100
    assert answer["root_causes"][0]["category"] == "tls_certificate"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["why?", "--logs", "missing.log"], "log file not found: missing.log"),
        (["why?", "--metrics", "nope/metrics.csv"], "metrics file not found: nope/metrics.csv"),
        ([""], "nothing to ask"),
        (["x" * 20_001], "invalid question: String should have at most 20000 characters"),
        (["why?", "--user", ""], "invalid --user"),
    ],
    ids=["missing-logs", "missing-metrics", "empty-request", "question-too-long", "empty-user"],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(tmp_path, *args)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.startswith("faultmaven:")]
    assert lines and message in lines[-1], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_a_gzip_file_that_is_not_gzip_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "app.log.gz"
    broken.write_bytes(b"\x1f\x8bnot really gzip at all")
    done = run(tmp_path, "why?", "--logs", str(broken))
    assert done.returncode == 2
    assert f"{broken}: not a readable gzip file" in done.stderr
