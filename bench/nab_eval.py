"""Window-level precision / recall / F1 of the metric anomaly detector on NAB's realAWSCloudwatch series.

Usage: ``python bench/nab_eval.py [DATA_DIR]`` (default ``../shared/data/nab-aws`` relative to the repo).
The directory holds ``timestamp,value`` CSVs and ``windows.json`` (file name → ``[[start, end], ...]``).

Definitions (from the data set's README): a labelled window is *found* when at least one reported anomaly
overlaps it; a reported anomaly is *right* when it overlaps any window. Precision = right / reported,
recall = found / windows, F1 their harmonic mean. Each file is analysed on its own with the product's
default settings; nothing here is specific to these files. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.anomalies.metrics import detect_metric_anomalies  # noqa: E402
from core.metrics import parse_timestamp, read_metrics  # noqa: E402
from core.models import ParseIssue  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "nab-aws"


def _prf(right: int, reported: int, found: int, windows: int) -> dict[str, float | None]:
    precision = right / reported if reported else None
    recall = found / windows if windows else None
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "precision": None if precision is None else round(precision, 4),
        "recall": None if recall is None else round(recall, 4),
        "f1": None if f1 is None else round(f1, 4),
    }


def _parse_window(raw: list[str]) -> tuple[datetime, datetime]:
    start, end = (parse_timestamp(text) for text in raw)
    if start is None or end is None:
        raise ValueError(f"bad window {raw!r}")
    return start, end


def evaluate(data_dir: Path) -> dict[str, Any]:
    windows_doc = json.loads((data_dir / "windows.json").read_text(encoding="utf-8"))
    per_file: dict[str, Any] = {}
    totals = {"reported": 0, "right": 0, "windows": 0, "found": 0}
    coverages: list[float] = []
    started = time.perf_counter()
    for csv_path in sorted(data_dir.glob("*.csv")):
        windows = [_parse_window(w) for w in windows_doc.get(csv_path.name, [])]
        issues: list[ParseIssue] = []
        series = read_metrics(csv_path, issues=issues)
        anomalies = detect_metric_anomalies(series)
        spans = []
        for anomaly in anomalies:
            if anomaly.start is None:
                continue
            spans.append((anomaly.start, anomaly.end or anomaly.start))
        right = sum(1 for s, e in spans if any(s <= we and e >= ws for ws, we in windows))
        found = sum(1 for ws, we in windows if any(s <= we and e >= ws for s, e in spans))
        stamps = [p.timestamp for s in series for p in s.points if p.timestamp is not None]
        span = (max(stamps) - min(stamps)).total_seconds() if stamps else 0.0
        inside = (
            sum((min(we, max(stamps)) - max(ws, min(stamps))).total_seconds() for ws, we in windows)
            if stamps
            else 0
        )
        coverage = inside / span if span else 0.0
        coverages.append(coverage)
        per_file[csv_path.name] = {
            "points": sum(len(s.points) for s in series),
            "window_coverage": round(coverage, 4),
            "parse_issues": len(issues),
            "windows": len(windows),
            "reported": len(spans),
            "right": right,
            "found": found,
            "kinds": sorted({a.kind for a in anomalies}),
            **_prf(right, len(spans), found, len(windows)),
        }
        totals["reported"] += len(spans)
        totals["right"] += right
        totals["windows"] += len(windows)
        totals["found"] += found
    overall = {
        **totals,
        **_prf(totals["right"], totals["reported"], totals["found"], totals["windows"]),
        # The share of time inside labelled windows: roughly the precision of randomly placed point anomalies.
        "mean_window_coverage": round(sum(coverages) / len(coverages), 4) if coverages else None,
    }
    return {
        "data": str(data_dir),
        "files": len(per_file),
        "seconds": round(time.perf_counter() - started, 2),
        "overall": overall,
        "per_file": per_file,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA, help="NAB AWS data directory")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir
    if not (data_dir / "windows.json").is_file():
        sys.stderr.write(
            f"nab_eval: no NAB data at {data_dir} (expected CSV files and windows.json); "
            "pass the directory as the first argument.\n"
        )
        return 2
    sys.stdout.write(json.dumps(evaluate(data_dir), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
