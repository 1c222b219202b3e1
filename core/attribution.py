"""Who a log record is about, as opposed to who wrote it.

Infrastructure reporters — the kernel, systemd, the kubelet, Kubernetes events, cron, the cluster
autoscaler — write about other things: ``Killed process 4242 (report-worker)``, ``BackOff pod/api-7d9f…``,
``eno1: NIC Link is Down`` on host cache-02. Their records are re-attributed to the workload, process or
host they name, so suspects rank the thing that broke rather than the component that noticed.
"""

from __future__ import annotations

import re

import numpy as np

from core.logtable import NO_SERVICE, LogTable
from core.normalize import workload_from_pod

REPORTERS = frozenset(
    {
        "kernel", "systemd", "systemd-networkd", "systemd-resolved", "networkmanager", "kubelet", "k8s-events",
        "events", "kube-events", "event-exporter", "kube-scheduler", "kube-controller-manager", "kube-apiserver",
        "default-scheduler", "containerd", "dockerd", "docker", "cron", "crond", "anacron", "sshd", "sudo",
        "cluster-autoscaler", "kube-proxy", "auditd", "rsyslogd", "journal", "systemd-journald", "init",
        "oom-killer", "monit", "supervisord", "horizontal-pod-autoscaler",
    }
)  # fmt: skip

_PROCESS = re.compile(
    r"Killed process \d+ \(([\w.-]+)\)|\b([\w.-]+)\.service\b|container ([a-z0-9][a-z0-9-]*)", re.I
)
_OBJECT = re.compile(
    r"\b(?:pod|deployment|replicaset|statefulset|daemonset|job|hpa)/([a-z0-9][a-z0-9.-]*)|"
    r"\bpod=\"?(?:[a-z0-9-]+/)?([a-z0-9][a-z0-9.-]*)",
    re.I,
)
_POD_NAME = re.compile(r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)+)\b")
_GENERIC_PROCESSES = {"python", "python3", "java", "node", "ruby", "sh", "bash", "php", "perl", "dotnet"}


def is_reporter(name: str) -> bool:
    return name.lower() in REPORTERS


def reattribute(table: LogTable) -> None:
    """Move reporters' records to the services, processes or hosts they name (in place)."""
    reporter_ids = {sid for sid, name in enumerate(table.services) if is_reporter(name)}
    if not reporter_ids:
        return
    known = [s for s in table.services if s != NO_SERVICE and not is_reporter(s)]
    column = np.frombuffer(table.service, dtype=np.uint16) if len(table.service) else None
    if column is None:
        return
    clusters = np.frombuffer(table.cluster, dtype=np.int32)
    moves: list[tuple[int, int, int]] = []  # (cluster, from service, to service)
    for cid, stats in table.clusters.items():
        sources = [sid for sid in stats.services if sid in reporter_ids]
        if not sources:
            continue
        texts = [table.miner.template(cid), *(e.text for e in stats.examples)]
        target = _named_subject("\n".join(texts), known)
        for sid in sources:
            name = target or _host_of(table, sid)
            if name is None:
                continue
            moves.append((cid, sid, table.service_id(name)))
    if not moves:
        return
    if not column.flags.writeable:  # pragma: no cover - array.array buffers are writable
        return
    for cid, old, new in moves:
        mask = (clusters == cid) & (column == old)
        column[mask] = new
        stats = table.clusters[cid]
        stats.services[new] += stats.services.pop(old, 0)
    for group in table.exceptions.values():
        for cid, old, new in moves:
            if cid in group.clusters and old in group.services:
                group.services[new] += group.services.pop(old)


def _named_subject(text: str, known: list[str]) -> str | None:
    lowered = text.lower()
    for match in _OBJECT.finditer(text):
        return workload_from_pod(match.group(1) or match.group(2), strip_ordinal=False)
    for match in _PROCESS.finditer(text):
        name = next(g for g in match.groups() if g)
        if name.lower() not in _GENERIC_PROCESSES and not name.lower().startswith("systemd"):
            return _known_or(name, known)
    for service in sorted(known, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(service.lower())}(?![\w-])", lowered):
            return service
    for match in _POD_NAME.finditer(text):
        workload = workload_from_pod(match.group(1), strip_ordinal=False)
        if workload != match.group(1):
            return workload
    return None


def _known_or(name: str, known: list[str]) -> str:
    lowered = name.lower()
    for service in known:
        if service.lower() == lowered:
            return service
    return name


def _host_of(table: LogTable, sid: int) -> str | None:
    hosts = table.hosts.get(sid)
    if not hosts:
        return None
    host, _ = hosts.most_common(1)[0]
    return host
