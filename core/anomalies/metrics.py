"""Anomalies in metric series: spikes and dips, level shifts, multivariate outliers and threshold breaches.

Per series with enough points (:data:`MIN_POINTS`):

* daily and weekly seasonality is removed first when the series spans at least three periods and the
  seasonal profile explains enough of its variation;
* **spikes/dips**: residuals from a centred rolling median, scaled by a robust spread (MAD, falling back to
  the mean absolute deviation and a floor relative to the level, so MAD = 0 is safe). A point is anomalous
  when its robust z-score clears both :data:`SPIKE_Z` and a multiple of the series' own upper tail, so a
  series that is always bursty does not alarm on every burst. Adjacent anomalous points merge into one
  anomaly with a start and an end; gaps in time are never bridged.
* **level shifts**: the difference between the medians of the windows just after and just before each
  point, scored against that difference's own robust spread; local maxima become one anomaly each.

Across series sharing timestamps, an IsolationForest (fixed ``random_state``) over robustly standardised
values and their whitened principal components proposes **multivariate outliers**; a point is reported when
it is also far out on a whitened component (a broken relation between series) and no single series already
explains it.

Snapshot values (no timestamps) and series too short for statistics get **threshold** rules where the
meaning is known from the name: CPU/memory/disk utilisation, error rate, latency.

Scores are robust z-like numbers, comparable across kinds; weak findings are dropped, each series keeps at
most :data:`MAX_PER_SERIES` anomalies and the result is ranked by score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from core.focus import FAMILY_METRIC_HINTS
from core.models import Anomaly, AnomalyKind, Evidence, MetricSeries

logger = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
Direction = Literal["up", "down", "none"]

MIN_POINTS = 12
"""Series with fewer points get threshold rules only: a handful of points says nothing statistically."""
SPIKE_Z = 6.0
"""Minimum robust z-score of a spike or dip."""
TAIL_FACTOR = 2.0
TAIL_QUANTILE = 0.98
"""A spike must also exceed TAIL_FACTOR times this quantile of the series' own |z| (series of 100+ points)."""
LEVEL_Z = 6.0
"""Minimum robust z-score of a level shift (median after vs. before, against that statistic's own spread)."""
LEVEL_NOISE_FACTOR = 2.0
"""A level shift must also be this many point-noise spreads in size."""
MV_Z = 8.0
"""Minimum robust z-score on a whitened component for a multivariate outlier."""
MV_MIN_POINTS = 30
MV_MAX_SERIES = 50
"""The multivariate model runs on 2..MV_MAX_SERIES series sharing at least MV_MIN_POINTS timestamps."""
MAX_PER_SERIES = 5
MAX_TOTAL = 50
FOCUS_BOOST = 1.5
SCORE_CAP = 1000.0
GAP_FACTOR = 3.0
"""A time step more than this many median steps long is a gap: windows and merged anomalies never span it."""

RECURRENCE_MIN_DAYS = 3
RECURRENCE_TOLERANCE = 3600.0
"""A spike recurring within this many seconds of the same time of day on most days is routine."""
PLATEAU_MAX_FRACTION = 0.25
"""A shift and its reversal at most this fraction of the series apart are reported as one episode."""
BURSTY_GROUPS = 6
BURSTY_FACTOR = 1.5
"""With more than BURSTY_GROUPS spikes, only those BURSTY_FACTOR times the median spike's score remain."""
RELATIVE_FLOOR = 0.15
"""Within a series, findings weaker than this fraction of its strongest finding are dropped."""

MAX_SEASONAL_BUCKETS = 1440
"""At most this many phase buckets per seasonal period (one a minute for a daily cycle)."""
TREND_WINDOW_MAX = 289
"""Longest rolling-median window (in points) used to detrend; longer ones run on a thinned series."""

_DAY = 86400.0
_WEEK = 7 * _DAY
_SEASONAL_MIN_STRENGTH = 0.2


# --------------------------------------------------------------------------------------------------
# Preparation


@dataclass(frozen=True)
class _Prepared:
    series: MetricSeries
    times: FloatArray | None  # epoch seconds, strictly increasing; None when the series has no timestamps
    values: FloatArray
    segment: NDArray[np.int64]  # segment id per point; segments are separated by gaps in time

    @property
    def n(self) -> int:
        return int(self.values.size)

    def when(self, index: int) -> datetime | None:
        if self.times is None:
            return None
        return datetime.fromtimestamp(float(self.times[index]), UTC)


def _prepare(series: MetricSeries) -> _Prepared | None:
    timed = [(p.timestamp.timestamp(), p.value) for p in series.points if p.timestamp is not None]
    if timed and len(timed) >= len(series.points) / 2:
        timed.sort()
        raw_t = np.array([t for t, _ in timed], dtype=np.float64)
        raw_v = np.array([v for _, v in timed], dtype=np.float64)
        uniq, inverse = np.unique(raw_t, return_inverse=True)
        sums = np.zeros(uniq.size)
        counts = np.zeros(uniq.size)
        np.add.at(sums, inverse, raw_v)
        np.add.at(counts, inverse, 1.0)
        values = sums / counts
        times: FloatArray | None = uniq
    else:
        values = np.array([p.value for p in series.points], dtype=np.float64)
        times = None
    keep = np.isfinite(values)
    if not keep.all():
        values = values[keep]
        times = times[keep] if times is not None else None
    if values.size == 0:
        return None
    segment = np.zeros(values.size, dtype=np.int64)
    if times is not None and values.size > 2:
        deltas = np.diff(times)
        step = float(np.median(deltas))
        if step > 0:
            segment[1:] = np.cumsum(deltas > GAP_FACTOR * step)
    return _Prepared(series=series, times=times, values=values, segment=segment)


# --------------------------------------------------------------------------------------------------
# Robust statistics


def _robust_scale(residuals: FloatArray, *, level: float) -> float:
    """A spread estimate that is never zero when anything deviates: MAD, then mean absolute deviation,
    floored at 1% of the series level so tiny wobbles around a large constant do not look huge."""
    centre = float(np.median(residuals))
    dev = np.abs(residuals - centre)
    scale = 1.4826 * float(np.median(dev))
    if scale <= 0:
        scale = 1.2533 * float(np.mean(dev))
    if scale <= 0:
        return 0.0
    return max(scale, 0.01 * abs(level))


def _rolling_median(values: FloatArray, window: int) -> FloatArray:
    """Centred rolling median; edges are padded with the nearest value."""
    if values.size == 0:
        return values.copy()
    window = max(1, min(window, values.size if values.size % 2 else values.size - 1))
    half = window // 2
    # Edges are padded with the median of a few edge points rather than the edge point itself, so a spike
    # on the first or last point does not fill its own baseline.
    k = max(3, half // 2 + 1)
    head = np.full(half, float(np.median(values[:k])))
    tail = np.full(half, float(np.median(values[-k:])))
    padded = np.concatenate([head, values, tail])
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    return np.asarray(np.median(view, axis=1), dtype=np.float64)


def _per_segment(prep: _Prepared, values: FloatArray, window: int) -> FloatArray:
    out = np.empty_like(values)
    for seg in np.unique(prep.segment):
        mask = prep.segment == seg
        out[mask] = _rolling_median(values[mask], window)
    return out


def _trend(values: FloatArray, window: int) -> FloatArray:
    """A rolling median over ``window`` points, computed on a thinned series when the window is long."""
    thin = max(1, -(-window // TREND_WINDOW_MAX))
    sample_at = np.arange(0, values.size, thin)
    smooth = _rolling_median(values[sample_at], max(1, window // thin) | 1)
    return np.asarray(np.interp(np.arange(values.size), sample_at, smooth), dtype=np.float64)


def _deseasonalize(prep: _Prepared) -> tuple[FloatArray, str | None]:
    """Remove a daily and/or weekly profile when the series spans three periods and the profile matters."""
    values = prep.values
    if prep.times is None or prep.n < 3 * 24:
        return values, None
    step = float(np.median(np.diff(prep.times)))
    span = float(prep.times[-1] - prep.times[0])
    found: list[str] = []
    for period, label in ((_DAY, "daily"), (_WEEK, "weekly")):
        if step <= 0 or span < 3 * period or step > period / 12:
            continue
        bucket_width = max(step, period / MAX_SEASONAL_BUCKETS)  # fine-grained data shares coarser buckets
        buckets = round(period / bucket_width)
        offsets = ((prep.times - prep.times[0]) % period) / bucket_width
        phase = np.floor(offsets + 0.5).astype(np.int64) % buckets
        detrended = values - _trend(values, round(period / step))
        profile = np.zeros(buckets)
        order = np.argsort(phase, kind="stable")
        bounds = np.flatnonzero(np.diff(phase[order])) + 1
        for group in np.split(order, bounds):
            if group.size >= 3:
                profile[phase[group[0]]] = float(np.median(detrended[group]))
        remainder = detrended - profile[phase]
        before = float(np.mean(np.abs(detrended - np.median(detrended))))
        after = float(np.mean(np.abs(remainder - np.median(remainder))))
        if before > 0 and 1.0 - after / before >= _SEASONAL_MIN_STRENGTH:
            values = values - profile[phase]
            found.append(label)
    return values, ("+".join(found) or None)


# --------------------------------------------------------------------------------------------------
# Findings before they become Anomaly models


@dataclass
class _Finding:
    kind: AnomalyKind
    prep: _Prepared
    first: int
    last: int
    score: float
    direction: Direction
    magnitude: float
    observed: float
    typical: float
    notes: list[str]
    returned: bool = False  # a level shift that later came back: start is the shift, end the return


def _groups(
    flags: NDArray[np.bool_], signs: FloatArray, segment: NDArray[np.int64], *, bridge: int = 2
) -> list[tuple[int, int]]:
    """Runs of flagged points with the same sign at most ``bridge`` positions apart, never across gaps."""
    idx = np.flatnonzero(flags)
    runs: list[tuple[int, int]] = []
    for i in idx.tolist():
        if runs:
            first, last = runs[-1]
            if i - last <= bridge and signs[i] == signs[last] and segment[i] == segment[last]:
                runs[-1] = (first, i)
                continue
        runs.append((i, i))
    return runs


def _recurs_daily(prep: _Prepared, signed_z: FloatArray, *, first: int, last: int) -> bool:
    """True when a deviation as strong (half the peak or more) happens at this time of day on most days.

    A nightly batch job or backup is routine however large; it must not be reported as an incident.
    """
    times = prep.times
    if times is None or times[-1] - times[0] < RECURRENCE_MIN_DAYS * _DAY:
        return False
    peak = float(np.max(signed_z[first : last + 1]))
    lo_t, hi_t = float(times[first]) - RECURRENCE_TOLERANCE, float(times[last]) + RECURRENCE_TOLERANCE
    covered = repeats = 0
    days = int((times[-1] - times[0]) // _DAY) + 1
    for k in range(-days, days + 1):
        if k == 0:
            continue
        a = int(np.searchsorted(times, lo_t + k * _DAY))
        b = int(np.searchsorted(times, hi_t + k * _DAY, side="right"))
        if b - a < 2:
            continue
        covered += 1
        if float(np.max(signed_z[a:b])) >= 0.5 * peak:
            repeats += 1
    return covered >= 2 and repeats >= max(2, covered / 2)


def _spikes(prep: _Prepared, values: FloatArray, *, window: int) -> tuple[list[_Finding], float]:
    """Spikes and dips; also returns the point-noise spread used for them."""
    baseline = _per_segment(prep, values, window)
    residual = values - baseline
    level = float(np.median(prep.values))
    scale = _robust_scale(residual, level=level)
    if scale <= 0:
        return [], 0.0
    z = residual / scale
    absz = np.abs(z)
    threshold = SPIKE_Z
    if prep.n >= 100:
        threshold = max(threshold, TAIL_FACTOR * float(np.quantile(absz, TAIL_QUANTILE)))
    flags = absz >= threshold
    findings: list[_Finding] = []
    for first, last in _groups(flags, np.sign(z), prep.segment, bridge=max(2, window // 2)):
        sign = np.sign(z[first])
        if _recurs_daily(prep, z * sign, first=first, last=last):
            continue
        lo, hi = first, last
        while lo > 0 and prep.segment[lo - 1] == prep.segment[first] and z[lo - 1] * sign >= threshold / 2:
            lo -= 1
        while (
            hi < prep.n - 1
            and prep.segment[hi + 1] == prep.segment[first]
            and z[hi + 1] * sign >= threshold / 2
        ):
            hi += 1
        peak = lo + int(np.argmax(absz[lo : hi + 1]))
        findings.append(
            _Finding(
                kind="spike" if sign > 0 else "dip",
                prep=prep,
                first=lo,
                last=hi,
                score=float(absz[peak]),
                direction="up" if sign > 0 else "down",
                magnitude=abs(float(residual[peak])),
                observed=float(prep.values[peak]),
                typical=float(prep.values[peak] - residual[peak]),
                notes=[f"robust z-score {absz[peak]:.1f} against a threshold of {threshold:.1f}"],
            )
        )
    if len(findings) > BURSTY_GROUPS:
        # Many separate bursts of similar size are how this series normally behaves: keep only the ones
        # that stand out from the other bursts.
        usual = float(np.median([f.score for f in findings]))
        findings = [f for f in findings if f.score >= BURSTY_FACTOR * usual]
        for f in findings:
            f.notes.append(f"stands out from this series' usual bursts (median burst z {usual:.1f})")
    return findings, scale


def _level_shifts(prep: _Prepared, values: FloatArray, *, window: int, noise: float) -> list[_Finding]:
    """Points where the median of the next ``window`` points departs from the median of the previous ones."""
    positions: list[int] = []
    diffs: list[float] = []
    for seg in np.unique(prep.segment):
        idx = np.flatnonzero(prep.segment == seg)
        if idx.size < 2 * window:
            continue
        view = np.lib.stride_tricks.sliding_window_view(values[idx], window)
        medians = np.median(view, axis=1)  # medians[i] = median(values[i : i + window])
        for t in range(window, idx.size - window + 1):
            positions.append(int(idx[t]))
            diffs.append(float(medians[t] - medians[t - window]))
    if len(diffs) < 2:
        return []
    d = np.array(diffs)
    pos = np.array(positions)
    level = float(np.median(prep.values))
    scale = _robust_scale(d, level=0.0)
    if scale <= 0:
        return []
    scale = max(scale, 0.002 * abs(level))
    z = (d - float(np.median(d))) / scale
    absz = np.abs(z)
    candidate = (absz >= LEVEL_Z) & (np.abs(d) >= LEVEL_NOISE_FACTOR * noise)
    findings: list[_Finding] = []
    taken = np.zeros(d.size, dtype=bool)
    for k in np.argsort(-absz):
        if not candidate[k]:
            break
        lo = np.searchsorted(pos, pos[k] - window)
        hi = np.searchsorted(pos, pos[k] + window, side="right")
        if taken[lo:hi].any():
            continue
        taken[lo:hi] = True
        t = _refine_change(prep.values, int(pos[k]), window=window, segment=prep.segment)
        before = float(np.median(prep.values[max(0, t - window) : t]))
        after = float(np.median(prep.values[t : t + window]))
        findings.append(
            _Finding(
                kind="level_shift",
                prep=prep,
                first=max(0, t - 1),
                last=t,
                score=float(absz[k]),
                direction="up" if d[k] > 0 else "down",
                magnitude=abs(d[k]),
                observed=after,
                typical=before,
                notes=[f"median of {window} points moved from {before:.4g} to {after:.4g}"],
            )
        )
    return _pair_plateaus(sorted(findings, key=lambda f: f.first), limit=int(PLATEAU_MAX_FRACTION * prep.n))


def _pair_plateaus(shifts: list[_Finding], *, limit: int) -> list[_Finding]:
    """Join a shift and the opposite shift that brings the level back into one episode."""
    out: list[_Finding] = []
    i = 0
    while i < len(shifts):
        current = shifts[i]
        if i + 1 < len(shifts):
            nxt = shifts[i + 1]
            size = max(current.magnitude, nxt.magnitude)
            if (
                nxt.direction != current.direction
                and nxt.first - current.last <= limit
                and abs(nxt.observed - current.typical) <= 0.25 * size
                and current.prep.segment[current.first] == nxt.prep.segment[nxt.last]
            ):
                back = current.prep.when(nxt.last)
                note = f"came back to about {nxt.observed:.4g}" + (
                    f" at {back:%Y-%m-%d %H:%M} UTC" if back else ""
                )
                out.append(
                    _Finding(
                        kind="level_shift",
                        prep=current.prep,
                        first=current.first,
                        last=nxt.last,
                        score=max(current.score, nxt.score),
                        direction=current.direction,
                        magnitude=current.magnitude,
                        observed=current.observed,
                        typical=current.typical,
                        notes=[*current.notes, note],
                        returned=True,
                    )
                )
                i += 2
                continue
        out.append(current)
        i += 1
    return out


def _refine_change(values: FloatArray, t: int, *, window: int, segment: NDArray[np.int64]) -> int:
    """The split near ``t`` that best separates two levels (least absolute deviation from each median)."""
    lo = max(0, t - window)
    hi = min(values.size, t + window)
    while segment[lo] != segment[t]:
        lo += 1
    while segment[hi - 1] != segment[t]:
        hi -= 1
    best, best_cost = t, np.inf
    half = max(1, window // 2)
    for split in range(max(lo + 1, t - half), min(hi - 1, t + half) + 1):
        left, right = values[lo:split], values[split:hi]
        cost = float(np.sum(np.abs(left - np.median(left))) + np.sum(np.abs(right - np.median(right))))
        if cost < best_cost:
            best, best_cost = split, cost
    return best


def _window_sizes(n: int) -> tuple[int, int]:
    spike_window = int(np.clip(n // 40, 5, 31)) | 1
    level_window = int(np.clip(n // 25, 6, 48))
    return spike_window, level_window


def _univariate(prep: _Prepared) -> list[_Finding]:
    values, seasonal = _deseasonalize(prep)
    spike_window, level_window = _window_sizes(prep.n)
    spikes, noise = _spikes(prep, values, window=spike_window)
    shifts = _level_shifts(prep, values, window=level_window, noise=noise)
    # A spike right at a level shift in the same direction is the shift itself.
    kept = [
        s
        for s in spikes
        if not any(
            s.direction == ls.direction and s.first <= ls.last + level_window // 2 and s.last >= ls.first - 1
            for ls in shifts
        )
    ]
    out = kept + shifts
    # Weak findings next to a much stronger one of the same family add noise, not information.
    for family in (("spike", "dip"), ("level_shift",)):
        members = [f for f in out if f.kind in family]
        if members:
            strongest = max(min(f.score, SCORE_CAP) for f in members)
            out = [
                f
                for f in out
                if f.kind not in family or min(f.score, SCORE_CAP) >= RELATIVE_FLOOR * strongest
            ]
    if seasonal:
        for finding in out:
            finding.notes.append(f"{seasonal} seasonality removed before scoring")
    return out


# --------------------------------------------------------------------------------------------------
# Multivariate


def _multivariate(
    preps: Sequence[_Prepared], explained: dict[str, list[tuple[float, float]]]
) -> list[_Finding]:
    timed = [p for p in preps if p.times is not None and p.n >= MV_MIN_POINTS]
    if len(timed) < 2:
        return []
    # scikit-learn costs about a second to import: only pay for it when several series share timestamps.
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest

    common = timed[0].times
    assert common is not None
    for p in timed[1:]:
        assert p.times is not None
        common = np.intersect1d(common, p.times)
    if common.size < MV_MIN_POINTS:
        return []
    columns: list[FloatArray] = []
    raw_columns: list[FloatArray] = []
    kept: list[_Prepared] = []
    for p in timed:
        assert p.times is not None
        values = p.values[np.searchsorted(p.times, common)]
        centre = float(np.median(values))
        scale = _robust_scale(values, level=centre)
        if scale <= 0:
            continue  # a constant series carries no relationship
        columns.append((values - centre) / scale)
        raw_columns.append(values)
        kept.append(p)
    if len(columns) < 2:
        return []
    if len(columns) > min(MV_MAX_SERIES, common.size // 5):
        logger.debug("too many series for a multivariate model", extra={"series": len(columns)})
        return []
    standardized = np.column_stack(columns)
    pca = PCA(whiten=True, random_state=0).fit(standardized)
    # Components with no real variance (duplicated or derived series) would only amplify rounding noise.
    useful = pca.explained_variance_ratio_ > 1e-6
    whitened = pca.transform(standardized)[:, useful]
    robust_components = np.column_stack(
        [
            (whitened[:, j] - np.median(whitened[:, j]))
            / max(_robust_scale(whitened[:, j], level=0.0), 1e-12)
            for j in range(whitened.shape[1])
        ]
    )
    forest = IsolationForest(n_estimators=200, random_state=0)
    features = np.column_stack([standardized, robust_components])
    forest.fit(features)
    isolation = -forest.score_samples(features)
    deviation = np.max(np.abs(robust_components), axis=1)
    threshold = MV_Z
    if common.size >= 100:
        threshold = max(threshold, TAIL_FACTOR * float(np.quantile(deviation, TAIL_QUANTILE)))
    flags = (deviation >= threshold) & (isolation >= float(np.quantile(isolation, 0.99)))
    for i in np.flatnonzero(flags):
        t = float(common[i])
        if any(lo <= t <= hi for spans in explained.values() for lo, hi in spans):
            flags[i] = False
    segment = np.zeros(common.size, dtype=np.int64)
    if common.size > 2:
        deltas = np.diff(common)
        segment[1:] = np.cumsum(deltas > GAP_FACTOR * float(np.median(deltas)))
    findings: list[_Finding] = []
    for first, last in _groups(flags, np.ones(common.size), segment):
        peak = first + int(np.argmax(deviation[first : last + 1]))
        # The subject is the series that strays furthest from its usual value at the peak.
        lead = int(np.argmax(np.abs(standardized[peak])))
        prep = kept[lead]
        assert prep.times is not None
        index_first = int(np.searchsorted(prep.times, common[first]))
        index_last = int(np.searchsorted(prep.times, common[last]))
        typical = float(np.median(raw_columns[lead]))
        observed = float(raw_columns[lead][peak])
        notes = [
            f"{p.series.key}={raw_columns[j][peak]:.4g} (typical {np.median(raw_columns[j]):.4g})"
            for j, p in enumerate(kept)
        ]
        notes.append(f"isolation score {isolation[peak]:.2f}; whitened deviation {deviation[peak]:.1f}")
        findings.append(
            _Finding(
                kind="multivariate_outlier",
                prep=prep,
                first=index_first,
                last=index_last,
                score=float(deviation[peak]),
                direction="none",
                magnitude=abs(observed - typical),
                observed=observed,
                typical=typical,
                notes=[*notes, "members: " + ", ".join(p.series.key for p in kept)],
            )
        )
    return findings


# --------------------------------------------------------------------------------------------------
# Thresholds


@dataclass(frozen=True)
class _Rule:
    label: str
    threshold: float
    limit: float


_NAME_SEPARATORS = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1024)
def _name_tokens(name: str) -> frozenset[str]:
    """The lowercase words of a series name (kept per name: the same series come back)."""
    return frozenset(_NAME_SEPARATORS.split(name.lower()))


# The name words of the series _rule_for knows (sets made once: a set display in an expression is built
# anew on every evaluation).
_ERROR_WORDS = frozenset({"error", "errors", "5xx", "failure", "failures", "fail"})
_RATE_WORDS = frozenset({"rate", "ratio", "percent", "pct", "percentage"})
_LATENCY_WORDS = frozenset({"latency", "duration", "response", "rt", "p99", "p95"})
_MEMORY_WORDS = frozenset({"memory", "mem", "heap", "swap"})
_DISK_WORDS = frozenset({"disk", "fs", "filesystem", "storage", "volume", "inode", "inodes"})


def _rule_for(series: MetricSeries, value: float) -> _Rule | None:
    tokens = _name_tokens(series.name)
    unit = series.unit
    if tokens & _ERROR_WORDS and tokens & _RATE_WORDS:
        if unit == "percent" or value > 1.0:
            return _Rule("error rate", 5.0, 100.0)
        return _Rule("error rate", 0.05, 1.0)
    if tokens & _LATENCY_WORDS:
        if unit == "ms":
            return _Rule("latency", 1000.0, 10000.0)
        if unit == "seconds":
            return _Rule("latency", 1.0, 10.0)
        return None
    if unit != "percent":
        return None
    if "cpu" in tokens:
        return _Rule("CPU utilisation", 90.0, 100.0)
    if tokens & _MEMORY_WORDS:
        return _Rule("memory utilisation", 90.0, 100.0)
    if tokens & _DISK_WORDS:
        return _Rule("disk utilisation", 90.0, 100.0)
    return None


def _threshold(prep: _Prepared) -> _Finding | None:
    index = prep.n - 1
    value = float(prep.values[index])
    rule = _rule_for(prep.series, value)
    if rule is None or value < rule.threshold:
        return None
    excess = min(1.0, (value - rule.threshold) / (rule.limit - rule.threshold))
    return _Finding(
        kind="threshold",
        prep=prep,
        first=index,
        last=index,
        score=SPIKE_Z + 10.0 * excess,
        direction="up",
        magnitude=value - rule.threshold,
        observed=value,
        typical=rule.threshold,
        notes=[f"{rule.label} {value:.4g} is at or above the {rule.threshold:.4g} alert level"],
    )


# --------------------------------------------------------------------------------------------------
# Output


def _focus_terms(focus: Collection[str]) -> set[str]:
    terms: set[str] = set()
    for hint in focus:
        word = hint.strip().lower()
        if not word:
            continue
        terms.add(word)
        terms.update(FAMILY_METRIC_HINTS.get(word, ()))
    return terms


def _format(value: float, unit: str | None) -> str:
    text = f"{value:.4g}"
    if unit == "percent":
        return text + "%"
    if unit in ("ms", "bytes", "seconds", "us"):
        return f"{text} {unit}"
    return text


def _describe(f: _Finding) -> str:
    key = f.prep.series.key
    unit = f.prep.series.unit
    start = f.prep.when(f.first)
    end = f.prep.when(f.last)
    when = ""
    if start is not None and end is not None:
        when = f" at {start:%Y-%m-%d %H:%M} UTC"
        if end != start and f.kind != "level_shift":
            when = f" from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    obs, typ = _format(f.observed, unit), _format(f.typical, unit)
    if f.kind == "spike":
        return f"{key} spiked to {obs}{when} (typical {typ})."
    if f.kind == "dip":
        return f"{key} dropped to {obs}{when} (typical {typ})."
    if f.kind == "level_shift":
        verb = "rose" if f.direction == "up" else "fell"
        if f.returned and start is not None and end is not None:
            return (
                f"{key} {verb} from about {typ} to about {obs} at {start:%Y-%m-%d %H:%M} UTC"
                f" and came back at {end:%Y-%m-%d %H:%M} UTC."
            )
        if f.returned:
            return f"{key} {verb} from about {typ} to about {obs} for a while, then came back."
        return f"{key} {verb} from about {typ} to about {obs}{when} and stayed there."
    if f.kind == "threshold":
        return f"{key} is {obs}, at or above the {typ} alert level."
    return f"{key} and related series broke their usual relationship{when} ({key} was {obs}, typical {typ})."


def _to_anomaly(f: _Finding, terms: set[str]) -> Anomaly:
    series = f.prep.series
    score = min(f.score, SCORE_CAP)
    notes = list(f.notes)
    haystack = series.key.lower()
    matched = sorted(term for term in terms if term in haystack)
    if matched:
        score *= FOCUS_BOOST
        notes.append("matches the question's focus: " + ", ".join(matched))
    members = [series.key]
    if f.kind == "multivariate_outlier":
        listed = next((n for n in f.notes if n.startswith("members: ")), "")
        members = [m for m in listed.removeprefix("members: ").split(", ") if m] or members
    service = series.labels.get("service") or series.labels.get("app") or series.labels.get("job")
    return Anomaly(
        kind=f.kind,
        source="metrics",
        subject=series.key,
        start=f.prep.when(f.first),
        end=f.prep.when(f.last),
        score=round(score, 3),
        direction=f.direction,
        magnitude=f.magnitude,
        service=service,
        evidence=Evidence(series=members, notes=[n for n in notes if not n.startswith("members: ")]),
        description=_describe(f),
    )


def detect_metric_anomalies(series: Sequence[MetricSeries], *, focus: Collection[str] = ()) -> list[Anomaly]:
    """Anomalies across ``series``, strongest first.

    ``focus`` holds hints from the user's question (signal families such as ``"latency"``, or service
    names); anomalies on series whose key matches one are weighed up. Deterministic for a given input.
    """
    preps = [p for p in (_prepare(s) for s in series) if p is not None]
    findings: list[_Finding] = []
    explained: dict[str, list[tuple[float, float]]] = {}
    for prep in preps:
        if prep.times is None or prep.n < MIN_POINTS:
            found = _threshold(prep)
            if found is not None:
                findings.append(found)
            continue
        univariate = _univariate(prep)
        findings.extend(univariate)
        times = prep.times
        explained[prep.series.key] = [
            (float(times[max(0, f.first - 1)]), float(times[min(prep.n - 1, f.last + 1)])) for f in univariate
        ]
    findings.extend(_multivariate(preps, explained))

    terms = _focus_terms(focus)
    anomalies = [_to_anomaly(f, terms) for f in findings]
    per_series: dict[str, int] = {}
    out: list[Anomaly] = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for anomaly in sorted(anomalies, key=lambda a: (-a.score, a.start or epoch, a.subject)):
        count = per_series.get(anomaly.subject, 0)
        if count >= MAX_PER_SERIES:
            continue
        per_series[anomaly.subject] = count + 1
        out.append(anomaly)
        if len(out) >= MAX_TOTAL:
            break
    logger.debug("metric anomalies", extra={"series": len(preps), "anomalies": len(out)})
    return out
