"""`faultmaven analyze` end to end, as a separate process, on the bundled example incident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.models import Report

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "checkout-incident"
LOGS = sorted(str(p) for p in EXAMPLE.glob("*.log"))


def _run(command: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTMAVEN_", "SLACK_"))}
    return subprocess.run(
        [sys.executable, "-m", "faultmaven.cli", command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
        check=False,
    )


def test_json_report_names_the_origin_and_its_failure() -> None:
    done = _run("analyze", *LOGS, "--metrics", str(EXAMPLE / "metrics.csv"), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = Report.model_validate_json(done.stdout)
    assert report.suspects[0].name == "inventory"  # checkout logs far more errors, but it is the victim
    assert report.root_causes[0].category.value == "memory_exhaustion"
    assert report.root_causes[0].evidence.lines
    assert report.incident_start is not None and report.time_basis == "timestamps"
    assert {a.source for a in report.anomalies} == {"logs", "metrics"}
    assert report.counts_by_service["checkout"] > report.counts_by_service["inventory"]
    # no progress bar when stderr is not a terminal
    assert "analyzing:" not in done.stderr


def test_template_ids_match_faultmaven_templates() -> None:
    log = str(EXAMPLE / "inventory.log")
    analyzed = Report.model_validate_json(_run("analyze", log, "--format", "json").stdout)
    mined = _run("templates", log, "--format", "jsonl")
    assert mined.returncode == 0, mined.stderr
    ids = {
        json.loads(line)["template_id"]: json.loads(line)["template"] for line in mined.stdout.splitlines()
    }
    assert analyzed.templates
    for row in analyzed.templates:
        assert ids.get(row.id) == row.template


def test_text_and_markdown_renderings() -> None:
    text = _run("analyze", *LOGS, "--query", "why is checkout failing?")
    assert text.returncode == 0, text.stderr
    assert "Root-cause hypotheses:" in text.stdout and "Suspects:" in text.stdout
    markdown = _run("analyze", *LOGS, "--format", "markdown")
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("## FaultMaven analysis")
    assert "| # | Confidence | Category | Hypothesis |" in markdown.stdout


def test_healthy_input_is_a_successful_run_with_nothing_found(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.log"
    quiet.write_text(
        "".join(f"2026-03-10T14:{i // 60:02d}:{i % 60:02d}Z INFO GET /healthz 200 2ms\n" for i in range(300))
    )
    done = _run("analyze", str(quiet), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = Report.model_validate_json(done.stdout)
    assert report.records == 300 and not report.root_causes
    assert not [a for a in report.anomalies if a.kind == "error_burst"]


def test_bad_input_is_a_clear_error() -> None:
    missing = _run("analyze", "/nonexistent/app.log")
    assert missing.returncode == 2
    assert "log file not found: /nonexistent/app.log" in missing.stderr
    nothing = _run("analyze")
    assert nothing.returncode == 2 and "at least one log file" in nothing.stderr


def test_progress_bar_on_a_terminal_for_large_inputs(tmp_path: Path) -> None:
    import pty

    big = tmp_path / "big.log"
    with big.open("w") as out:
        for i in range(60_000):
            out.write(
                f"2026-03-10T14:{(i // 1000) % 60:02d}:{i % 60:02d}Z INFO order {i} processed in {i % 97}ms\n"
            )
    controller, terminal = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULTMAVEN_", "SLACK_"))}
        done = subprocess.run(
            [sys.executable, "-m", "faultmaven.cli", "analyze", str(big), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            cwd=ROOT,
            env=env,
            timeout=180,
            check=False,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert b"analyzing: 60,000 records" in shown
    assert Report.model_validate_json(done.stdout).records == 60_000
