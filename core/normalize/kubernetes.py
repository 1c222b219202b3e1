"""Kubernetes naming: pod name -> workload, and pod metadata encoded in container log file paths."""

from __future__ import annotations

import logging
import re
from typing import Final

logger = logging.getLogger(__name__)

# Kubernetes generates name suffixes from this alphabet (no vowels, no 0/1/3 to avoid words and look-alikes).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
# Hand-made and generated data often use hex-like suffixes instead; accept those when they mix letters and
# digits, so that words ("-proxy", "-admin") are never taken for suffixes.
_RANDOM_SUFFIX: Final = re.compile(rf"[{_SAFE}]{{5}}|(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{{5}}")
_TEMPLATE_HASH: Final = re.compile(rf"[{_SAFE}]{{6,10}}|\d{{6,10}}|(?=[a-z]*\d)(?=\d*[a-z])[0-9a-f]{{6,10}}")
_CRONJOB_STAMP: Final = re.compile(r"\d{8,10}")
_ORDINAL: Final = re.compile(r"\d{1,5}")

# /var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log
_CONTAINERS_PATH: Final = re.compile(
    r"(?:^|/)(?P<pod>[a-z0-9][a-z0-9.-]*)_(?P<ns>[a-z0-9][a-z0-9-]*)_(?P<container>[a-z0-9][a-z0-9-]*)-[0-9a-f]{64}\.log"
)
# /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log
_PODS_PATH: Final = re.compile(
    r"(?:^|/)(?P<ns>[a-z0-9][a-z0-9-]*)_(?P<pod>[a-z0-9][a-z0-9.-]*)_[0-9a-f-]{36}/(?P<container>[a-z0-9-]+)/\d+\.log"
)


def workload_from_pod(pod: str, *, strip_ordinal: bool = True) -> str:
    """The workload a pod belongs to, from the suffixes its controller appends.

    ``checkout-7d9f8b6c5-x2x9k`` (Deployment) -> ``checkout``; ``redis-0`` (StatefulSet) -> ``redis``;
    ``fluentd-x2x9k`` (DaemonSet, Job) -> ``fluentd``; ``backup-28492740-k8m2p`` (CronJob) -> ``backup``.
    A name with no recognisable suffix is returned unchanged. ``strip_ordinal=False`` keeps a StatefulSet
    ordinal (use it where ``cache-02`` may be a host or a replica that matters on its own).
    """
    parts = pod.strip().split("-")
    if len(parts) < 2 or not all(parts):
        return pod.strip()
    if _RANDOM_SUFFIX.fullmatch(parts[-1]) and len(parts) >= 2:
        parts.pop()
        if len(parts) >= 2 and (_TEMPLATE_HASH.fullmatch(parts[-1]) or _CRONJOB_STAMP.fullmatch(parts[-1])):
            parts.pop()
        return "-".join(parts)
    if len(parts) >= 2 and _TEMPLATE_HASH.fullmatch(parts[-1]) and not _ORDINAL.fullmatch(parts[-1]):
        parts.pop()  # a ReplicaSet name: <deployment>-<pod-template-hash>
        return "-".join(parts)
    if strip_ordinal and _ORDINAL.fullmatch(parts[-1]):
        parts.pop()
        return "-".join(parts)
    return "-".join(parts)


def pod_from_path(path: str) -> tuple[str, str, str] | None:
    """(pod, namespace, container) encoded in a kubelet container log path, or None."""
    match = _CONTAINERS_PATH.search(path)
    if match is None:
        match = _PODS_PATH.search(path)
    if match is None:
        return None
    return match["pod"], match["ns"], match["container"]
