"""Kubernetes Event objects (kubectl get events -o json items, event exporters) as log records."""

from datetime import UTC, datetime
from pathlib import Path

from core.models import Severity
from core.normalize import read_logs

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "logs" / "k8s_events.jsonl"


def test_events_map_time_type_object_and_reason() -> None:
    records = list(read_logs(FIXTURE))
    assert len(records) == 4
    scheduled, backoff, node, scaled = records
    assert scheduled.severity is Severity.INFO and scheduled.service == "orders"
    assert scheduled.pod == "orders-5f7c9b8d6-q8w2x"
    # lastTimestamp is when the (deduplicated) event last happened
    assert backoff.timestamp == datetime(2026, 4, 7, 8, 19, 2, tzinfo=UTC)
    assert backoff.severity is Severity.WARN and backoff.logger == "kubelet"
    assert backoff.message.startswith(
        "BackOff pod/orders-5f7c9b8d6-q8w2x: Back-off restarting failed container"
    )
    assert node.host == "ip-10-0-3-17.ec2.internal" and node.service is None
    assert node.message.startswith("NodeHasDiskPressure node/")
    # events.k8s.io/v1 names the object "regarding" and the text "note"
    assert scaled.service == "payments" and scaled.logger == "deployment-controller"
    assert (
        scaled.message
        == "ScalingReplicaSet deployment/payments: Scaled up replica set payments-7d9f8b6c5 to 3"
    )
    assert scaled.timestamp is not None and scaled.timestamp.microsecond == 120000
