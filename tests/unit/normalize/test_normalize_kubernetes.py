from __future__ import annotations

import pytest

from core.normalize import workload_from_pod
from core.normalize.kubernetes import pod_from_path


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("checkout-7d9f8b6c5-x2x9k", "checkout"),  # Deployment
        ("payments-api-5c8d7f9b4-7hx2n", "payments-api"),
        ("cart-api-66b8c9d7f-zt7wq", "cart-api"),
        ("redis-0", "redis"),  # StatefulSet
        ("kafka-broker-12", "kafka-broker"),
        ("fluentd-x2x9k", "fluentd"),  # DaemonSet
        ("db-migrate-v42-4hxzt", "db-migrate-v42"),  # Job
        ("backup-28492740-k8m2p", "backup"),  # CronJob
        ("coredns-5d78c9869d-7tq2z", "coredns"),
        ("nginx", "nginx"),  # bare pod
        ("web-frontend", "web-frontend"),  # no generated suffix (has vowels)
        ("  checkout-7d9f8b6c5-x2x9k ", "checkout"),
        ("", ""),
        ("-", "-"),
    ],
)
def test_workload_from_pod(pod: str, workload: str) -> None:
    assert workload_from_pod(pod) == workload


def test_pod_from_kubelet_paths() -> None:
    containers = (
        "/var/log/containers/checkout-7d9f8b6c5-x2x9k_shop_checkout-" + "0123456789abcdef" * 4 + ".log"
    )
    assert pod_from_path(containers) == ("checkout-7d9f8b6c5-x2x9k", "shop", "checkout")
    pods = "/var/log/pods/shop_redis-0_7a1c2b3d-4e5f-6789-abcd-0123456789ab/redis/0.log"
    assert pod_from_path(pods) == ("redis-0", "shop", "redis")
    assert pod_from_path("/var/log/syslog") is None
