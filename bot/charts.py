"""PNG charts of a metric series with its anomaly window shaded (matplotlib's Agg backend, no display).

Figures are built with the object API (``Figure`` + ``FigureCanvasAgg``), never pyplot, so rendering is
safe from worker threads and leaves no global state behind."""

from __future__ import annotations

import io
import logging
from datetime import datetime

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from core.answers import Answer
from core.models import Anomaly, MetricSeries

log = logging.getLogger(__name__)

TOP_ANOMALIES = 3


def anomaly_to_chart(answer: Answer, series: list[MetricSeries]) -> tuple[Anomaly, MetricSeries] | None:
    """The metric anomaly that drives the answer, with its series: a metrics anomaly among the strongest
    few of the analysis, or one whose series backs the top root cause; None when metrics did not matter."""
    report = answer.analysis
    if report is None or not series:
        return None
    by_key = {s.key: s for s in series if len(s.points) >= 2}
    by_name = {s.name: s for s in series if len(s.points) >= 2}
    backing = set(answer.root_causes[0].evidence.series) if answer.root_causes else set()
    top = sorted(report.anomalies, key=lambda a: a.score, reverse=True)[:TOP_ANOMALIES]
    candidates = [a for a in report.anomalies if a.source == "metrics" and a.subject in backing]
    candidates += [a for a in top if a.source == "metrics"]
    for anomaly in candidates:
        found = by_key.get(anomaly.subject) or by_name.get(anomaly.subject)
        if found is not None:
            return anomaly, found
    return None


def render_anomaly_chart(series: MetricSeries, anomaly: Anomaly, *, width_px: int = 1000) -> bytes:
    """The series as a line, the anomaly window shaded, as PNG bytes."""
    points = [p for p in series.points if p.timestamp is not None]
    dpi = 100
    figure = Figure(figsize=(width_px / dpi, width_px * 0.42 / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if points:
        times: list[datetime] = [p.timestamp for p in points if p.timestamp is not None]
        axes.plot(times, [p.value for p in points], color="#1f6feb", linewidth=1.4)  # type: ignore[arg-type]
    else:
        axes.plot(list(range(len(series.points))), [p.value for p in series.points], color="#1f6feb")
    start, end = anomaly.start, anomaly.end
    if points and start is not None:
        # An open-ended anomaly (a level shift that stayed) is shaded to the end of the data.
        last = points[-1].timestamp
        end = end or (last if last is not None and last > start else start)
        axes.axvspan(start, end, color="#d1242f", alpha=0.18, label="anomaly")  # type: ignore[arg-type]
        axes.axvline(start, color="#d1242f", linewidth=0.8, alpha=0.6)  # type: ignore[arg-type]
        axes.legend(loc="upper left", frameon=False)
    unit = f" ({series.unit})" if series.unit else ""
    axes.set_title(f"{series.key}{unit}"[:120], fontsize=11)
    axes.set_ylabel(series.unit or "value")
    axes.grid(alpha=0.25)
    if points:
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
        first = points[0].timestamp
        axes.set_xlabel(f"UTC, {first:%Y-%m-%d}" if first is not None else "UTC")
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
