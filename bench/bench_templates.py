"""Template-mining benchmark: our pipeline against drain3 on a generated, labelled corpus. Prints JSON.

What it measures (see bench/README.md):

* ``messages``: both miners on the same header-stripped messages, the ``LogRecord.message`` values that
  ``read_logs`` produced from the raw lines. This is the like-for-like miner comparison. Each miner runs
  twice, alternating, and the faster run of each counts (the machine is shared).
* ``end_to_end``: what ``faultmaven templates --format jsonl`` runs before it writes its output
  (``faultmaven.commands.templates.mine``: ``read_messages`` + miner + the per-record ledger) from the raw
  files, against drain3 fed the raw lines directly (drain3 has no header parser of its own, so raw lines are
  its usual input).
* grouping accuracy (Loghub's definition: a line is right when the set of lines in its predicted group
  equals the set of lines in its true group), using each miner's *final* template of the line's cluster.
* peak memory (ru_maxrss of the child) of ``faultmaven templates --format jsonl FILE > /dev/null`` on a
  generated file of ``--memory-lines`` lines.

drain3 runs with its defaults (similarity 0.4, depth 4, 100 children) plus the usual masking
instructions for IP, NUM and HEX from its example configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.corpus import STYLES, event_count, generate
from core.normalize import read_logs, read_messages
from core.templates import TemplateMiner
from faultmaven.commands.templates import mine

log = logging.getLogger("bench.templates")

DRAIN3_MASKS = (
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
)


def grouping_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Share of lines whose predicted group holds exactly the lines of their true group."""
    if not predicted:
        return 0.0
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(predicted):
        groups[key].append(index)
    truth_sizes = Counter(truth)
    right = 0
    for members in groups.values():
        event = truth[members[0]]
        if truth_sizes[event] == len(members) and all(truth[i] == event for i in members):
            right += len(members)
    return right / len(predicted)


def per_style_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    by_style: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for key, event in zip(predicted, truth, strict=True):
        style = event.split(":", 1)[0]
        by_style[style][0].append(key)
        by_style[style][1].append(event)
    return {style: round(grouping_accuracy(p, t), 4) for style, (p, t) in sorted(by_style.items())}


def _drain3_miner() -> Any:
    from drain3 import TemplateMiner as Drain3Miner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in DRAIN3_MASKS]
    return Drain3Miner(config=config)


def _timed(run: Callable[[], list[str]]) -> tuple[list[str], float, float]:
    wall = time.perf_counter()
    cpu = time.process_time()
    out = run()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def ours_on(messages: Iterable[str]) -> list[str]:
    miner = TemplateMiner()
    clusters = [miner.add(message) for message in messages]
    final = {cluster: miner.template(cluster) for cluster in set(clusters)}
    return [final[c] for c in clusters]


def drain3_on(messages: Iterable[str]) -> list[str]:
    miner = _drain3_miner()
    clusters = [miner.add_log_message(message)["cluster_id"] for message in messages]
    final = {cluster.cluster_id: cluster.get_template() for cluster in miner.drain.clusters}
    return [final[c] for c in clusters]


def ours_pipeline(files: Sequence[Path]) -> list[str]:
    """`faultmaven templates --format jsonl` up to its output: the command's own reading and mining."""
    with open(os.devnull, "w") as errors:
        mined = mine([str(path) for path in files], log_format=None, ledger=True, errors=errors)
    assert mined.ledger is not None
    miner = mined.miner
    final = {cluster: miner.template(cluster) for cluster in set(mined.ledger.cluster)}
    return [final[c] for c in mined.ledger.cluster]


def count_messages(files: Sequence[Path]) -> list[str]:
    return [message for path in files for message, _, _ in read_messages(str(path))]


def header_stripped_messages(files: Sequence[Path]) -> list[str]:
    return [record.message for path in files for record in read_logs(str(path))]


def _result(name: str, predicted: list[str], truth: list[str], cpu: float, wall: float) -> dict[str, Any]:
    lines = len(predicted)
    return {
        "miner": name,
        "lines": lines,
        "lines_per_s_cpu": round(lines / cpu) if cpu else None,
        "lines_per_s_wall": round(lines / wall) if wall else None,
        "grouping_accuracy": round(grouping_accuracy(predicted, truth), 4),
        "templates": len(set(predicted)),
        "per_style_accuracy": per_style_accuracy(predicted, truth),
    }


def peak_memory(lines: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Peak RSS of `faultmaven templates --format jsonl` over a generated file, measured on the child.

    Run it while this process is small: Linux records the peak RSS of the address space a child replaces
    at exec in the child's ru_maxrss, and a child made by vfork (as subprocess does) replaces *this*
    process's address space, so a child started after the corpus is built would report this process's
    peak. ``launcher_peak_rss_mb`` (this process's peak so far) is the floor of what the child can report.
    """
    path = workdir / "memory.log"
    with path.open("w", encoding="utf-8") as out:
        for item in generate(lines, seed=seed):
            out.write(item.raw + "\n")
    command = [sys.executable, "-m", "faultmaven.cli", "templates", "--format", "jsonl", str(path)]
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        assert child.stderr is not None
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    size = path.stat().st_size
    path.unlink()
    return {
        "lines": lines,
        "file_mb": round(size / 1e6, 1),
        "exit_code": child.returncode,
        "stderr_lines": len(stderr.splitlines()),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "launcher_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wall_s": round(elapsed, 1),
        "lines_per_s_wall": round(lines / elapsed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-lines", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # drain3 logs every new cluster at INFO

    memory: dict[str, Any] | None = None
    if not args.skip_memory:  # first, while this process is small (see peak_memory)
        with tempfile.TemporaryDirectory(prefix="fm-bench-memory-") as tmp:
            memory = peak_memory(args.memory_lines, args.seed + 1, Path(tmp))

    corpus = list(generate(args.lines, seed=args.seed))
    styles = list(STYLES)
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "corpus": {
            "lines": len(corpus),
            "seed": args.seed,
            "styles": len(styles),
            "events": event_count(),
            "events_seen": len({item.event for item in corpus}),
        },
    }
    with tempfile.TemporaryDirectory(prefix="fm-bench-") as tmp:
        workdir = Path(tmp)
        files: list[Path] = []
        truth: list[str] = []
        raw: list[str] = []
        for style in styles:
            items = [item for item in corpus if item.event.startswith(style + ":")]
            path = workdir / f"{style}.log"
            path.write_text("".join(item.raw + "\n" for item in items), encoding="utf-8")
            files.append(path)
            truth.extend(item.event for item in items)
            raw.extend(item.raw for item in items)
        del corpus

        messages, read_cpu, read_wall = _timed(lambda: header_stripped_messages(files))
        if len(messages) != len(truth):
            report["error"] = f"read_logs gave {len(messages)} records for {len(truth)} lines"
            print(json.dumps(report, indent=2))
            return 1
        report["read_logs"] = {
            "lines_per_s_cpu": round(len(messages) / read_cpu),
            "lines_per_s_wall": round(len(messages) / read_wall),
        }
        light, light_cpu, light_wall = _timed(lambda: count_messages(files))
        report["read_messages"] = {
            "lines_per_s_cpu": round(len(light) / light_cpu),
            "lines_per_s_wall": round(len(light) / light_wall),
            "same_messages_as_read_logs": light == messages,
        }
        del light

        runs: dict[str, list[tuple[list[str], float, float]]] = {"ours": [], "drain3": []}
        for _ in range(2):
            runs["ours"].append(_timed(lambda: ours_on(messages)))
            runs["drain3"].append(_timed(lambda: drain3_on(messages)))
        best = {name: min(results, key=lambda r: r[1]) for name, results in runs.items()}
        ours = _result("ours", best["ours"][0], truth, best["ours"][1], best["ours"][2])
        drain = _result("drain3", best["drain3"][0], truth, best["drain3"][1], best["drain3"][2])
        report["messages"] = {
            "input": "LogRecord.message from read_logs (header stripped), the same text for both",
            "ours": ours,
            "drain3": drain,
            "throughput_ratio_cpu": round(ours["lines_per_s_cpu"] / drain["lines_per_s_cpu"], 2),
            "accuracy_delta": round(ours["grouping_accuracy"] - drain["grouping_accuracy"], 4),
        }
        del runs, best

        if not args.skip_end_to_end:
            predicted, cpu, wall = _timed(lambda: ours_pipeline(files))
            e2e_ours = _result(
                "ours: faultmaven templates (read_messages + miner), raw lines", predicted, truth, cpu, wall
            )
            predicted, cpu, wall = _timed(lambda: drain3_on(raw))
            e2e_drain = _result("drain3, raw lines", predicted, truth, cpu, wall)
            report["end_to_end"] = {
                "ours": e2e_ours,
                "drain3": e2e_drain,
                "throughput_ratio_cpu": round(e2e_ours["lines_per_s_cpu"] / e2e_drain["lines_per_s_cpu"], 2),
                "accuracy_delta": round(e2e_ours["grouping_accuracy"] - e2e_drain["grouping_accuracy"], 4),
            }
        messages.clear()
        raw.clear()

        if memory is not None:
            report["memory"] = memory
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
