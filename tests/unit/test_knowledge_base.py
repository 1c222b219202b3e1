"""The shipped knowledge base: every file loads, coverage of the taxonomy, realistic lines hit the right
signature, team runbook folders (YAML and Markdown front matter), and the matcher's scoring and robustness."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import knowledge_base as kbmod
from core.errors import NotFoundError
from core.knowledge_base import (
    METRIC_SYNONYMS,
    EvidenceProfile,
    KnowledgeBase,
    KnowledgeFileError,
    MetricSignal,
    Signature,
    WeightedText,
    analyse_pattern,
    fold,
    runbook_steps_from_markdown,
)
from core.models import Anomaly, Category, ParseIssue, Report, Severity, TemplateSummary

RUNBOOKS = Path(__file__).resolve().parents[1] / "fixtures" / "runbooks"
CONCRETE_CATEGORIES = [category for category in Category if category is not Category.UNKNOWN]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture
def fresh_builtin_cache() -> Iterator[None]:
    kbmod._builtin_signatures.cache_clear()
    yield
    kbmod._builtin_signatures.cache_clear()


def _profile(*lines: str | tuple[str, float], question: str = "") -> EvidenceProfile:
    messages = []
    for item in lines:
        text, weight = (item, 1.0) if isinstance(item, str) else item
        messages.append(WeightedText(text=text, weight=weight))
    return EvidenceProfile(question=question, messages=messages)


# Realistic log lines, one or more per shipped signature, with the signature each should point to. They are
# modelled on what the named software prints; hosts, ids and numbers are invented.
EXAMPLES: list[tuple[str, str]] = [
    # cloud
    (
        "botocore.exceptions.ClientError: An error occurred (ThrottlingException) when calling the "
        "DescribeInstances operation (reached max retries: 4): Rate exceeded",
        "aws-api-throttling",
    ),
    (
        "ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table "
        "was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
        "dynamodb-throughput-exceeded",
    ),
    (
        "An error occurred (ExpiredToken) when calling the GetObject operation: The security token included in "
        "the request is expired",
        "aws-credentials-expired-or-missing",
    ),
    (
        "WebIdentityErr: failed to retrieve credentials caused by: InvalidIdentityToken: Incorrect token audience",
        "aws-credentials-expired-or-missing",
    ),
    (
        "User: arn:aws:sts::123456789012:assumed-role/orders-api/i-0ab12 is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::orders-exports/2024/05/report.csv",
        "aws-access-denied",
    ),
    (
        "Launching a new EC2 instance. Status Reason: We currently do not have sufficient p3.2xlarge capacity in "
        "the Availability Zone you requested (us-east-1a). InsufficientInstanceCapacity",
        "aws-insufficient-instance-capacity",
    ),
    ("     pps_allowance_exceeded: 18234", "aws-ena-allowance-exceeded"),
    (
        "2024-05-02T10:15:42.118Z 6f1c2a7e-3b4d-4c1e-9a55-0d9e2f1a7b31 Task timed out after 30.03 seconds",
        "lambda-timeout-or-oom",
    ),
    (
        "google.api_core.exceptions.ResourceExhausted: 429 Quota exceeded for quota metric 'Read requests' and "
        "limit 'Read requests per minute' of service 'sheets.googleapis.com'",
        "gcp-quota-exceeded",
    ),
    # compute
    (
        "kernel: Out of memory: Killed process 48213 (java) total-vm:9823412kB, anon-rss:7712340kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:15872kB oom_score_adj:0",
        "linux-oom-killer",
    ),
    ("ERROR: could not write to /var/log/app/app.log: No space left on device", "linux-disk-full"),
    (
        "touch: cannot touch '/var/spool/sessions/sess_9f2': No space left on device (filesystem out of inodes)",
        "linux-inode-exhaustion",
    ),
    (
        "EXT4-fs error (device nvme1n1p1): ext4_journal_check_start:83: Detected aborted journal; "
        "Remounting filesystem read-only",
        "linux-readonly-filesystem",
    ),
    (
        "kernel: INFO: task postgres:2231 blocked for more than 120 seconds.",
        "linux-hung-task-io-stall",
    ),
    (
        "kernel: watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1873]",
        "linux-soft-lockup",
    ),
    (
        " 14:02:11 up 41 days,  3:12,  1 user,  load average: 38.12, 35.77, 30.04",
        "linux-cpu-run-queue-saturation",
    ),
    (
        "http: Accept error: accept tcp [::]:8080: accept4: too many open files; retrying in 1s",
        "linux-too-many-open-files",
    ),
    (
        "dial tcp 10.12.4.18:443: connect: cannot assign requested address",
        "linux-ephemeral-port-exhaustion",
    ),
    (
        "kernel: worker[3312]: segfault at 0 ip 00007f2b1c2d4e10 sp 00007ffd6a1b2c40 error 4 in "
        "libcrypto.so.1.1[7f2b1c000000+2b0000]",
        "linux-segfault",
    ),
    (
        "systemd[1]: payments.service: Start request repeated too quickly.",
        "systemd-restart-loop",
    ),
    (
        "systemd[1]: payments.service: Scheduled restart job, restart counter is at 5.",
        "systemd-restart-loop",
    ),
    # data formats
    (
        "SyntaxError: Unexpected token < in JSON at position 0",
        "json-html-instead-of-json",
    ),
    (
        "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
        "json-html-instead-of-json",
    ),
    (
        "json: cannot unmarshal string into Go struct field Order.total of type float64",
        "json-schema-mismatch",
    ),
    (
        'com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException: Unrecognized field "discountCode" '
        "(class com.shop.OrderDto), not marked as ignorable",
        "json-schema-mismatch",
    ),
    (
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 14: invalid continuation byte",
        "text-encoding-error",
    ),
    (
        "java.lang.RuntimeException: java.sql.SQLException: Incorrect string value: '\\xF0\\x9F\\x98\\x80' for "
        "column 'comment' at row 1",
        "text-encoding-error",
    ),
    (
        'java.lang.NumberFormatException: For input string: "N/A"',
        "value-parse-error",
    ),
    (
        'parsing time "2024-05-02 10:15:42" as "2006-01-02T15:04:05Z07:00": cannot parse " 10:15:42" as "T"',
        "value-parse-error",
    ),
    (
        "pandas.errors.ParserError: Error tokenizing data. C error: Expected 12 fields in line 4821, saw 13",
        "csv-or-file-format-error",
    ),
    # database
    ("FATAL:  sorry, too many clients already", "db-max-connections-reached"),
    (
        "FATAL:  remaining connection slots are reserved for non-replication superuser connections",
        "db-max-connections-reached",
    ),
    (
        "ERROR:  deadlock detected DETAIL:  Process 7711 waits for ShareLock on transaction 98123; blocked by "
        "process 7702.",
        "db-deadlock",
    ),
    (
        "com.mysql.cj.jdbc.exceptions.MySQLTransactionRollbackException: Deadlock found when trying to get lock; "
        "try restarting transaction",
        "db-deadlock",
    ),
    (
        "com.mysql.cj.jdbc.exceptions.MySQLTransactionRollbackException: Lock wait timeout exceeded; try "
        "restarting transaction",
        "db-lock-wait-timeout",
    ),
    (
        "ERROR:  canceling statement due to statement timeout STATEMENT:  SELECT * FROM orders WHERE "
        "customer_id = $1 ORDER BY created_at DESC",
        "db-statement-timeout",
    ),
    (
        'ERROR:  could not extend file "base/16384/24591": No space left on device',
        "db-disk-full",
    ),
    (
        'psycopg2.errors.UndefinedColumn: column "discount_code" of relation "orders" does not exist',
        "db-schema-mismatch-after-deploy",
    ),
    (
        'ERROR:  database is not accepting commands to avoid wraparound data loss in database "orders"',
        "pg-transaction-id-wraparound",
    ),
    (
        "ERROR:  canceling statement due to conflict with recovery DETAIL:  User query might have needed to see "
        "row versions that must be removed.",
        "db-replica-conflict-or-lag",
    ),
    (
        'psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"',
        "db-unique-constraint-violation",
    ),
    (
        "psycopg2.OperationalError: server closed the connection unexpectedly This probably means the server "
        "terminated abnormally before or while processing the request.",
        "db-connection-lost",
    ),
    (
        "(2006, 'MySQL server has gone away')",
        "db-connection-lost",
    ),
    (
        "MongoServerSelectionError: Server selection timed out after 30000 ms",
        "mongodb-server-selection-timeout",
    ),
    (
        "redis.exceptions.ConnectionError: Error 111 connecting to cache-redis.prod.svc:6379. Connection refused.",
        "redis-unavailable",
    ),
    (
        "redis.exceptions.ReadOnlyError: READONLY You can't write against a read only replica.",
        "redis-unavailable",
    ),
    (
        "redis.exceptions.OutOfMemoryError: OOM command not allowed when used memory > 'maxmemory'.",
        "redis-maxmemory-oom",
    ),
    (
        "ERROR:  out of shared memory HINT:  You might need to increase max_locks_per_transaction.",
        "pg-out-of-shared-memory",
    ),
    (
        "psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update",
        "db-serialization-failure",
    ),
    # deploy
    (
        "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress",
        "helm-upgrade-failed",
    ),
    (
        "ComparisonError: failed to load target state: failed to generate manifest for source 1 of 1: "
        "rpc error: code = Unknown desc = Unable to generate manifests in charts/orders",
        "argocd-sync-failed",
    ),
    (
        "Error: Error acquiring the state lock: ConditionalCheckFailedException: The conditional request failed",
        "terraform-state-lock",
    ),
    (
        "failed to load config: yaml: line 14: mapping values are not allowed in this context",
        "config-file-parse-error",
    ),
    (
        "RuntimeError: environment variable DATABASE_URL is not set",
        "missing-env-or-required-setting",
    ),
    (
        '2024/05/02 10:15:42 [emerg] 1#1: unknown directive "proxy_bufering" in /etc/nginx/conf.d/app.conf:18',
        "nginx-config-emerg",
    ),
    (
        "PermissionError: [Errno 13] Permission denied: '/data/uploads/tmp'",
        "file-permission-denied",
    ),
    (
        "INFO gave up: worker entered FATAL state, too many start retries too quickly",
        "supervisord-process-fatal",
    ),
    (
        "orders-api-1 exited with code 1",
        "docker-container-restarting",
    ),
    (
        "orders-api-6b9f7c5d4-x2k8q   0/1     Init:Error   3 (40s ago)   2m",
        "k8s-init-container-failing",
    ),
    # go
    (
        'level=error msg="fetch inventory" err="Get \\"http://inventory:8080/v1/items\\": context deadline exceeded"',
        "go-context-deadline-exceeded",
    ),
    (
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "go-nil-pointer-panic",
    ),
    ("fatal error: concurrent map writes", "go-concurrent-map-writes"),
    ("fatal error: runtime: out of memory", "go-runtime-out-of-memory"),
    ("redis: connection pool timeout", "go-redis-pool-timeout"),
    (
        'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp '
        '10.4.2.9:50051: connect: connection refused"',
        "grpc-unavailable",
    ),
    # jvm
    ("java.lang.OutOfMemoryError: Java heap space", "jvm-heap-oom"),
    ("java.lang.OutOfMemoryError: GC overhead limit exceeded", "jvm-gc-overhead"),
    ("java.lang.OutOfMemoryError: Metaspace", "jvm-metaspace-oom"),
    (
        "java.lang.OutOfMemoryError: unable to create native thread: possibly out of memory or process/resource "
        "limits reached",
        "jvm-unable-to-create-native-thread",
    ),
    (
        "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out "
        "after 30000ms.",
        "hikari-pool-exhausted",
    ),
    (
        "WARN com.zaxxer.hikari.pool.HikariPool - HikariPool-1 - Thread starvation or clock leap detected "
        "(housekeeper delta=1m12s).",
        "hikari-thread-starvation",
    ),
    (
        "org.springframework.web.client.ResourceAccessException: I/O error on GET request for "
        '"http://pricing:8080/api/prices": Read timed out',
        "jvm-socket-read-timeout",
    ),
    (
        'java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null',
        "java-null-pointer",
    ),
    ('Exception in thread "main" java.lang.StackOverflowError', "java-stack-overflow"),
    (
        "java.lang.UnsupportedClassVersionError: com/shop/App has been compiled by a more recent version of the "
        "Java Runtime (class file version 65.0), this version of the Java Runtime only recognizes class file "
        "versions up to 61.0",
        "jvm-class-version-or-linkage-error",
    ),
    (
        "java.lang.NoSuchMethodError: 'void com.fasterxml.jackson.core.JsonParser.<init>(int)'",
        "jvm-class-version-or-linkage-error",
    ),
    (
        "***************************\nAPPLICATION FAILED TO START\n***************************\n"
        "Description: Failed to bind properties under 'app.payments.timeout' to java.time.Duration",
        "spring-application-failed-to-start",
    ),
    (
        "java.util.concurrent.RejectedExecutionException: Task java.util.concurrent.FutureTask@5e2de80c rejected "
        "from java.util.concurrent.ThreadPoolExecutor@1d44bcfa[Running, pool size = 50, active threads = 50, "
        "queued tasks = 1000, completed tasks = 88123]",
        "java-rejected-execution",
    ),
    (
        "org.apache.http.conn.ConnectionPoolTimeoutException: Timeout waiting for connection from pool",
        "http-client-pool-exhausted",
    ),
    (
        "redis.clients.jedis.exceptions.JedisExhaustedPoolException: Could not get a resource since the pool is "
        "exhausted; Could not get a resource from the pool",
        "http-client-pool-exhausted",
    ),
    (
        "Caused by: java.net.BindException: Address already in use",
        "java-bind-address-in-use",
    ),
    # kubernetes
    (
        "Last State: Terminated Reason: OOMKilled Exit Code: 137",
        "k8s-oomkilled",
    ),
    (
        "orders-api-6b9f7c5d4-x2k8q   0/1     CrashLoopBackOff   7 (2m13s ago)   15m",
        "k8s-crashloopbackoff",
    ),
    (
        "Warning  BackOff  kubelet  Back-off restarting failed container orders-api in pod "
        "orders-api-6b9f7c5d4-x2k8q_prod",
        "k8s-crashloopbackoff",
    ),
    (
        "Warning  Unhealthy  kubelet  Liveness probe failed: HTTP probe failed with statuscode: 503",
        "k8s-liveness-probe-failure",
    ),
    (
        'W0502 10:15:42 controller.go:1044] Service "prod/orders-api" does not have any active Endpoint.',
        "k8s-no-ready-endpoints",
    ),
    (
        "Warning  FailedScheduling  default-scheduler  0/12 nodes are available: 4 Insufficient cpu, "
        "8 Insufficient memory. preemption: 0/12 nodes are available: 12 No preemption victims found",
        "k8s-failedscheduling-insufficient-resources",
    ),
    (
        "0/6 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}, 3 node(s) didn't match Pod's "
        "node affinity/selector.",
        "k8s-unschedulable-taints-affinity",
    ),
    (
        "Warning  FailedScheduling  default-scheduler  0/5 nodes are available: pod has unbound immediate "
        "PersistentVolumeClaims.",
        "k8s-unbound-pvc-volume-attach",
    ),
    (
        "Warning  FailedAttachVolume  attachdetach-controller  Multi-Attach error for volume "
        '"pvc-3c1f2a90" Volume is already exclusively attached to one node and can\'t be attached to another',
        "k8s-unbound-pvc-volume-attach",
    ),
    (
        'Error creating: pods "orders-api-6b9f7c5d4-abcde" is forbidden: exceeded quota: compute-quota, '
        "requested: limits.memory=2Gi, used: limits.memory=31Gi, limited: limits.memory=32Gi",
        "k8s-resource-quota-exceeded",
    ),
    (
        "0/8 nodes are available: 8 Too many pods. preemption: 0/8 nodes are available: 8 No preemption victims "
        "found for incoming pod.",
        "k8s-too-many-pods-ip-exhaustion",
    ),
    (
        'Failed to create pod sandbox: plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to '
        "assign an IP address to container",
        "k8s-too-many-pods-ip-exhaustion",
    ),
    (
        "Normal  NotTriggerScaleUp  cluster-autoscaler  pod didn't trigger scale-up: 2 max node group size "
        "reached",
        "k8s-cluster-autoscaler-no-scale-up",
    ),
    (
        "ScalingLimited  True  TooManyReplicas  the desired replica count is more than the maximum replica count",
        "k8s-hpa-at-max-replicas",
    ),
    (
        "[FIRING:1] CPUThrottlingHigh prod/orders-api: 64.2% throttling of CPU in namespace prod for container "
        "orders-api in pod orders-api-6b9f7c5d4-x2k8q.",
        "k8s-cpu-throttling",
    ),
    (
        "Warning  Evicted  kubelet  The node was low on resource: ephemeral-storage. Threshold quantity: "
        "10120387707, available: 9613624Ki. Container orders-api was using 15122340Ki, request is 0.",
        "k8s-node-pressure-eviction-disk",
    ),
    (
        "Warning  Evicted  kubelet  The node was low on resource: memory. Threshold quantity: 100Mi, available: "
        "91652Ki. Container worker was using 6211300Ki, request is 1Gi.",
        "k8s-node-pressure-eviction-memory",
    ),
    (
        'Warning  Failed  kubelet  Failed to pull image "registry.example.com/shop/orders-api:1.42.0": rpc error: '
        "code = NotFound desc = failed to pull and unpack image: manifest unknown",
        "k8s-image-pull-backoff",
    ),
    (
        'Warning  Failed  kubelet  Error: secret "orders-db-credentials" not found',
        "k8s-create-container-config-error",
    ),
    (
        'error: deployment "orders-api" exceeded its progress deadline',
        "k8s-rollout-progress-deadline",
    ),
    (
        "exec /usr/local/bin/orders-api: exec format error",
        "k8s-container-start-error",
    ),
    (
        "Error from server (InternalError): Internal error occurred: failed calling webhook "
        '"validate.kyverno.svc-fail": failed to call webhook: Post "https://kyverno-svc.kyverno.svc:443/validate'
        '/fail?timeout=10s": context deadline exceeded',
        "k8s-admission-webhook-failure",
    ),
    (
        "I0502 10:15:42.118 request.go:697] Waited for 1.187s due to client-side throttling, not priority and "
        "fairness, request: GET:https://10.96.0.1:443/apis/apps/v1/namespaces/prod/replicasets",
        "k8s-api-server-throttling",
    ),
    (
        "kubelet: skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m12.5s ago; "
        "threshold is 3m0s",
        "kubelet-pleg-not-healthy",
    ),
    # messaging
    (
        "[FIRING:1] KafkaConsumerLag group=orders-projector topic=orders lag=182344",
        "kafka-consumer-lag",
    ),
    (
        "consumer poll timeout has expired. This means the time between subsequent calls to poll() was longer "
        "than the configured max.poll.interval.ms, which typically implies that the poll loop is spending too "
        "much time processing messages.",
        "kafka-rebalance-poll-timeout",
    ),
    (
        "WARN [Producer clientId=orders-producer] Got error produce response with correlation id 8812 on "
        "topic-partition orders-3, retrying (2 attempts left). Error: NOT_LEADER_OR_FOLLOWER",
        "kafka-not-leader-or-unavailable",
    ),
    (
        "org.apache.kafka.common.errors.TimeoutException: Expiring 46 record(s) for orders-7:120001 ms has passed "
        "since batch creation",
        "kafka-producer-batch-expired",
    ),
    (
        "org.apache.kafka.common.errors.RecordTooLargeException: The message is 1572902 bytes when serialized "
        "which is larger than 1048576, which is the value of the max.request.size configuration.",
        "kafka-record-too-large",
    ),
    (
        "org.apache.kafka.common.errors.SerializationException: Error deserializing Avro message for id -1 "
        "Caused by: Unknown magic byte!",
        "message-deserialization-failure",
    ),
    (
        "org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during authentication "
        "due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        "kafka-sasl-auth-failure",
    ),
    (
        "[warning] <0.412.0> memory resource limit alarm set on node rabbit@rabbitmq-0. Publishers will be "
        "blocked until this alarm clears",
        "rabbitmq-resource-alarm",
    ),
    (
        "ALARM: orders-queue-age - ApproximateAgeOfOldestMessage > 900 for 3 datapoints within 15 minutes",
        "sqs-backlog-growing",
    ),
    (
        "celery.exceptions.SoftTimeLimitExceeded: SoftTimeLimitExceeded()",
        "celery-queue-backlog",
    ),
    # network
    (
        "dial tcp: lookup payments.prod.svc.cluster.local on 10.96.0.10:53: no such host",
        "dns-name-not-found",
    ),
    (
        "Error: getaddrinfo ENOTFOUND inventory-api.internal",
        "dns-name-not-found",
    ),
    (
        "java.net.UnknownHostException: orders-db.prod.internal: Name or service not known",
        "dns-name-not-found",
    ),
    (
        "socket.gaierror: [Errno -3] Temporary failure in name resolution",
        "dns-resolver-timeout",
    ),
    (
        "[ERROR] plugin/errors: 2 api.stripe.com. A: read udp 10.2.0.14:41233->10.0.0.2:53: i/o timeout",
        "dns-resolver-timeout",
    ),
    (
        "dial tcp: lookup api.partner.example on 10.96.0.10:53: server misbehaving",
        "dns-servfail",
    ),
    (
        "slow request: dns lookup took 5.02s for api.partner.example (ndots:5 search path expansion)",
        "dns-ndots-latency",
    ),
    (
        "Error: connect ECONNREFUSED 10.4.2.9:5432",
        "network-connection-refused",
    ),
    (
        "dial tcp 10.4.2.9:8080: connect: no route to host",
        "network-no-route-to-host",
    ),
    (
        "dial tcp 10.20.3.14:5432: i/o timeout",
        "network-connect-timeout",
    ),
    (
        "read tcp 10.2.3.4:51234->10.4.5.6:443: read: connection reset by peer",
        "network-connection-reset",
    ),
    (
        "ping: local error: message too long, mtu=1450 (frag needed and DF set)",
        "network-mtu-blackhole",
    ),
    (
        "alert: TCP retransmission rate high on node ip-10-2-3-4: 4.8% packet loss to 10.4.0.0/16",
        "network-packet-loss-retransmits",
    ),
    (
        "kernel: nf_conntrack: nf_conntrack: table full, dropping packet",
        "linux-conntrack-table-full",
    ),
    # node
    (
        "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory",
        "node-heap-out-of-memory",
    ),
    (
        "warn: Event loop blocked for 1840ms, operation started here: at JSON.stringify",
        "node-event-loop-blocked",
    ),
    (
        "Error: Cannot find module 'express' Require stack: - /app/dist/server.js code: 'MODULE_NOT_FOUND'",
        "node-cannot-find-module",
    ),
    (
        "TypeError: Cannot read properties of undefined (reading 'id') at OrderService.total (/app/dist/orders.js:42:31)",
        "node-unhandled-rejection",
    ),
    (
        "KnexTimeoutError: Knex: Timeout acquiring a connection. The pool is probably full. Are you missing a "
        ".transacting(trx) call?",
        "node-knex-pool-timeout",
    ),
    (
        "AxiosError: timeout of 5000ms exceeded code: 'ECONNABORTED'",
        "node-axios-timeout",
    ),
    # python
    (
        "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, "
        "timeout 30.00",
        "sqlalchemy-queuepool-exhausted",
    ),
    (
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='api.partner.example', port=443): Read timed "
        "out. (read timeout=10)",
        "python-requests-timeout",
    ),
    (
        'psycopg2.OperationalError: connection to server at "orders-db.prod.internal" (10.4.2.9), port 5432 '
        "failed: Connection refused Is the server running on that host and accepting TCP/IP connections?",
        "psycopg2-cannot-connect",
    ),
    (
        "AttributeError: 'NoneType' object has no attribute 'customer_id'",
        "python-nonetype-attribute",
    ),
    (
        'Traceback (most recent call last):\n  File "/app/orders/views.py", line 88, in create\n'
        "    total = Decimal(payload['total'])\nKeyError: 'total'",
        "python-traceback-unhandled",
    ),
    (
        "[2024-05-02 10:15:42 +0000] [1] [ERROR] Worker (pid:231) was sent SIGKILL! Perhaps out of memory?",
        "python-memory-error",
    ),
    (
        "ModuleNotFoundError: No module named 'orjson'",
        "python-module-not-found",
    ),
    (
        "[2024-05-02 10:15:42 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:231)",
        "gunicorn-worker-timeout",
    ),
    (
        "RecursionError: maximum recursion depth exceeded while calling a Python object",
        "python-recursion-error",
    ),
    (
        "[2024-05-02 10:15:42,118: ERROR/MainProcess] consumer: Cannot connect to amqp://orders:**@rabbitmq:5672//: "
        "[Errno 111] Connection refused.",
        "celery-broker-connection-lost",
    ),
    # security
    (
        'Get "https://api.partner.example/v1/rates": x509: certificate has expired or is not yet valid: current '
        "time 2024-05-02T10:15:42Z is after 2024-05-01T23:59:59Z",
        "tls-certificate-expired",
    ),
    (
        "javax.net.ssl.SSLHandshakeException: PKIX path building failed: "
        "sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid certification path to "
        "requested target",
        "tls-unknown-authority",
    ),
    (
        'Get "https://10.4.2.9:8443/health": x509: certificate signed by unknown authority',
        "tls-unknown-authority",
    ),
    (
        "Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: "
        "orders.internal. is not in the cert's altnames: DNS:*.shop.example",
        "tls-hostname-mismatch",
    ),
    (
        "ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1129)",
        "tls-handshake-protocol-mismatch",
    ),
    (
        "http: TLS handshake error from 10.2.3.4:50412: tls: failed to verify client certificate: x509: "
        "certificate signed by unknown authority",
        "tls-mtls-client-certificate",
    ),
    (
        "TokenExpiredError: jwt expired at /app/node_modules/jsonwebtoken/verify.js:190:21",
        "auth-token-expired-or-invalid",
    ),
    (
        "jwt.exceptions.ImmatureSignatureError: The token is not yet valid (iat)",
        "auth-clock-skew-token-not-yet-valid",
    ),
    (
        'pods is forbidden: User "system:serviceaccount:prod:orders-operator" cannot list resource "pods" in API '
        'group "" in the namespace "prod"',
        "k8s-rbac-forbidden",
    ),
    (
        "redis.exceptions.AuthenticationError: WRONGPASS invalid username-password pair or user is disabled.",
        "redis-auth-failure",
    ),
    # web
    (
        "2024/05/02 10:15:42 [error] 31#31: *88121 connect() failed (111: Connection refused) while connecting to "
        'upstream, client: 10.2.3.4, server: shop.example, request: "GET /api/orders HTTP/1.1", upstream: '
        '"http://10.4.2.9:8080/api/orders"',
        "nginx-upstream-connect-failed",
    ),
    (
        "2024/05/02 10:15:42 [error] 31#31: *88121 upstream timed out (110: Connection timed out) while reading "
        'response header from upstream, client: 10.2.3.4, server: shop.example, request: "GET /api/report '
        'HTTP/1.1"',
        "nginx-upstream-timed-out",
    ),
    (
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        "envoy-upstream-reset",
    ),
    (
        "io.github.resilience4j.circuitbreaker.CallNotPermittedException: CircuitBreaker 'pricing' is OPEN and "
        "does not permit further calls",
        "circuit-breaker-open",
    ),
    (
        "POST https://api.partner.example/v1/charges failed: 429 Too Many Requests (Retry-After: 30)",
        "http-429-rate-limited",
    ),
    (
        '2024/05/02 10:15:42 [error] 31#31: *88121 limiting requests, excess: 20.480 by zone "api_per_ip", '
        "client: 10.2.3.4",
        "nginx-limit-req",
    ),
    (
        "2024/05/02 10:15:42 [error] 31#31: *88121 client intended to send too large body: 15728640 bytes, client: "
        "10.2.3.4",
        "http-request-entity-too-large",
    ),
    (
        "Normal  ScalingReplicaSet  deployment-controller  Scaled up replica set orders-api-7c9d8f6b5 to 3",
        "http-5xx-after-deploy",
    ),
]


# ------------------------------------------------------------------------------------------ shipped files


def _shipped_files() -> list[str]:
    folder = resources.files("core").joinpath("knowledge")
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def test_shipped_files_exist() -> None:
    assert len(_shipped_files()) >= 10


@pytest.mark.parametrize("name", _shipped_files())
def test_every_shipped_file_loads(name: str, kb: KnowledgeBase) -> None:
    text = resources.files("core").joinpath("knowledge").joinpath(name).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    assert document["schema_version"] == kbmod.FILE_SCHEMA_VERSION
    assert document["area"] == name.removesuffix(".yaml")
    ids = [entry["id"] for entry in document["signatures"]]
    assert len(ids) >= 3
    issues: list[ParseIssue] = []
    parsed = kbmod._parse_knowledge_text(
        text, source_name=name, source_value="builtin", issues=issues, allow_single=False
    )
    assert issues == []
    assert [signature.id for signature in parsed] == ids
    for signature_id in ids:
        assert kb.get(signature_id).source == "builtin"


def test_builtin_load_reports_no_issues(kb: KnowledgeBase) -> None:
    assert kb.issues == []


def test_at_least_80_signatures(kb: KnowledgeBase) -> None:
    assert len(kb.signatures) >= 80


@pytest.mark.parametrize("category", CONCRETE_CATEGORIES, ids=lambda category: category.value)
def test_every_category_has_at_least_three_signatures(category: Category, kb: KnowledgeBase) -> None:
    assert len(kb.for_category(category)) >= 3


def test_signature_quality(kb: KnowledgeBase) -> None:
    ids = [signature.id for signature in kb.signatures]
    assert len(ids) == len(set(ids))
    titles = Counter(signature.title for signature in kb.signatures)
    assert titles.most_common(1)[0][1] == 1, "titles should tell signatures apart"
    for signature in kb.signatures:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", signature.id)
        assert signature.version >= 1
        assert signature.tags, signature.id
        assert signature.patterns, f"{signature.id} has no patterns"
        assert len(set(signature.patterns)) == len(signature.patterns), signature.id
        assert signature.causes, signature.id
        assert 3 <= len(signature.next_steps) <= 6, signature.id
        assert any(step.command for step in signature.next_steps), f"{signature.id} has no command to run"
        for step in signature.next_steps:
            assert len(step.why) >= 20, f"{signature.id}: '{step.title}' needs a real why"
        for condition in signature.metric_conditions:
            assert condition.metric in METRIC_SYNONYMS, f"{signature.id}: unknown metric {condition.metric}"


def test_every_pattern_compiles_and_needs_text(kb: KnowledgeBase) -> None:
    for signature in kb.signatures:
        for pattern in signature.patterns:
            compiled = re.compile(pattern, re.IGNORECASE)
            assert compiled.search("") is None, pattern


# ------------------------------------------------------------------------------------ realistic examples


def test_examples_cover_every_signature(kb: KnowledgeBase) -> None:
    covered = {signature_id for _, signature_id in EXAMPLES}
    assert covered == {signature.id for signature in kb.signatures}
    assert len(EXAMPLES) >= 40


@pytest.mark.parametrize(("line", "signature_id"), EXAMPLES, ids=[sid for _, sid in EXAMPLES])
def test_example_line_hits_a_pattern_of_its_signature(
    line: str, signature_id: str, kb: KnowledgeBase
) -> None:
    signature = kb.get(signature_id)
    assert any(re.search(pattern, line, re.IGNORECASE) for pattern in signature.patterns)


@pytest.mark.parametrize(("line", "signature_id"), EXAMPLES, ids=[sid for _, sid in EXAMPLES])
def test_example_line_ranks_its_signature_first(line: str, signature_id: str, kb: KnowledgeBase) -> None:
    matches = kb.match(_profile(line), limit=3)
    assert matches, line
    assert matches[0].signature.id == signature_id, [(m.signature.id, round(m.score, 3)) for m in matches]
    assert matches[0].signature.category is kb.get(signature_id).category
    assert any(item.startswith("pattern ") for item in matches[0].matched)


# Healthy lines that mention the same components; none of them should look like a failure.
BENIGN = [
    "  MemoryPressure   False   Mon, 02 May 2024 10:15:42 +0000   KubeletHasSufficientMemory   kubelet has "
    "sufficient memory available",
    "  DiskPressure     False   Mon, 02 May 2024 10:15:42 +0000   KubeletHasNoDiskPressure     kubelet has no "
    "disk pressure",
    "Normal  NodeHasNoDiskPressure  kubelet  Node ip-10-2-3-4 status is now: NodeHasNoDiskPressure",
    "  ScalingLimited  False   DesiredWithinRange  the desired count is within the acceptable range",
    '10.2.3.4 - - [02/May/2024:10:15:42 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"',
    "Normal  Started  kubelet  Started container orders-api",
    "HikariPool-1 - Pool stats (total=10, active=3, idle=7, waiting=0)",
    "[2024-05-02 10:15:42 +0000] [12] [INFO] Booting worker with pid: 12",
    "INFO [Consumer clientId=orders-1, groupId=orders-projector] Adding newly assigned partitions: orders-0",
    "INFO  o.s.b.w.embedded.tomcat.TomcatWebServer - Tomcat started on port(s): 8080 (http) with context path ''",
    'level=info msg="request completed" method=GET path=/api/orders status=200 duration=12ms',
    "LOG:  checkpoint complete: wrote 1321 buffers (8.1%); 0 WAL file(s) added, 0 removed, 1 recycled",
    "redis_version:7.2.4 connected_clients:42 used_memory_human:1.21G maxmemory_human:4.00G",
]


@pytest.mark.parametrize("line", BENIGN)
def test_healthy_lines_match_nothing(line: str, kb: KnowledgeBase) -> None:
    assert kb.match(_profile(line)) == []


def test_prefilter_literal_is_in_every_matching_example(kb: KnowledgeBase) -> None:
    lines = [line for line, _ in EXAMPLES]
    for signature in kb.signatures:
        for pattern in signature.patterns:
            literal, _ = analyse_pattern(pattern)
            compiled = re.compile(pattern, re.IGNORECASE)
            for line in lines:
                if compiled.search(line):
                    assert literal in fold(line), (pattern, literal, line)


_ALL_PATTERNS = sorted(
    {pattern for signature in KnowledgeBase.load().signatures for pattern in signature.patterns}
)


@st.composite
def _pattern_and_text(draw: st.DrawFn) -> tuple[str, str]:
    pattern = draw(st.sampled_from(_ALL_PATTERNS))
    pieces = [piece for piece in re.split(r"[\\()\[\]|?*+{}^$.]", pattern) if piece]
    chunk = st.one_of(
        st.sampled_from(pieces or ["x"]), st.text(max_size=6), st.sampled_from(["ı", "İ", "K", "ſ"])
    )
    text = "".join(draw(st.lists(chunk, max_size=8)))
    return pattern, text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_pattern_and_text())
def test_prefilter_never_rejects_a_real_match(case: tuple[str, str]) -> None:
    pattern, text = case
    literal, _ = analyse_pattern(pattern)
    if re.search(pattern, text, re.IGNORECASE):
        assert literal in fold(text)


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("x509: certificate has expired", "x509: certificate has expired"),
        (r"HikariPool-\d+ - Connection is not available", " - connection is not available"),
        ("ab*cdef", "cdef"),
        ("abc?de", "ab"),
        ("too (many|much) clients", " clients"),
        ("OOMKilled|Evicted", ""),
        (r"\[emerg\] \d+#\d+: ", "[emerg] "),
        ("(?x) a b c", ""),
        ("[abc]x", ""),
        ("unable to create (new )?native thread", "unable to create "),
    ],
)
def test_analyse_pattern_literal(pattern: str, literal: str) -> None:
    assert analyse_pattern(pattern)[0] == literal


def test_analyse_pattern_specificity_grows_with_literal_text() -> None:
    assert analyse_pattern("x509: certificate has expired")[1] > analyse_pattern("expired")[1]
    assert analyse_pattern("(?<!HasNo)DiskPressure")[1] == len("DiskPressure")


# -------------------------------------------------------------------------------------------- matching


def test_specific_pattern_beats_generic_keyword(kb: KnowledgeBase) -> None:
    evidence = _profile(
        ("x509: certificate has expired or is not yet valid", 2.0),
        ("request failed with error, retrying", 500.0),
    )
    matches = kb.match(evidence, limit=5)
    assert matches[0].signature.id == "tls-certificate-expired"
    assert matches[0].score > 0.5
    assert all(match.score < matches[0].score / 2 for match in matches[1:])


def test_heavier_evidence_ranks_higher(kb: KnowledgeBase) -> None:
    dns = "dial tcp: lookup payments on 10.96.0.10:53: no such host"
    refused = "dial tcp 10.4.2.9:5432: connect: connection refused"
    first = kb.match(_profile((dns, 400.0), (refused, 3.0)), limit=2)
    second = kb.match(_profile((dns, 3.0), (refused, 400.0)), limit=2)
    assert first[0].signature.id == "dns-name-not-found"
    assert second[0].signature.id == "network-connection-refused"


def test_several_symptom_kinds_combine(kb: KnowledgeBase) -> None:
    line = "HikariPool-1 - Connection is not available, request timed out after 30000ms."
    alone = kb.match(_profile(line), limit=1)[0]
    evidence = EvidenceProfile(
        question="is the jdbc connection pool exhausted?",
        messages=[WeightedText(text=line, weight=5.0)],
        exception_types=["java.sql.SQLTransientConnectionException"],
        metric_anomalies=[MetricSignal(name="hikaricp_connections_pending", direction="up", score=4.0)],
    )
    combined = kb.match(evidence, limit=1)[0]
    assert alone.signature.id == combined.signature.id == "hikari-pool-exhausted"
    assert combined.score > alone.score
    kinds = {item.split(" ", 1)[0] for item in combined.matched}
    assert {"pattern", "exception", "metric", "question"} <= kinds
    assert "exception 'java.sql.SQLTransientConnectionException' reported" in combined.matched


def test_exception_in_text_and_in_list_counts_once(kb: KnowledgeBase) -> None:
    line = "java.net.UnknownHostException: orders-db: Name or service not known"
    alone = kb.match(_profile(line), limit=1)[0]
    both = kb.match(
        EvidenceProfile(
            messages=[WeightedText(text=line)], exception_types=["java.net.UnknownHostException"]
        ),
        limit=1,
    )[0]
    assert both.signature.id == alone.signature.id == "dns-name-not-found"
    assert both.score == pytest.approx(alone.score)


def test_matched_explains_the_hit_with_counts(kb: KnowledgeBase) -> None:
    evidence = EvidenceProfile(
        messages=[
            WeightedText(
                text="dial tcp: lookup payments on 10.0.0.10:53: no such host", weight=42.0, count=42
            )
        ]
    )
    top = kb.match(evidence, limit=1)[0]
    assert (
        "pattern '\\bno such host\\b' in 'dial tcp: lookup payments on 10.0.0.10:53: no such host' (x42)"
        in top.matched
    )


def test_question_alone_finds_signatures(kb: KnowledgeBase) -> None:
    matches = kb.match(EvidenceProfile(question="why do my pods keep getting OOMKilled?"), limit=3)
    assert matches[0].signature.id == "k8s-oomkilled"
    assert "question mentions 'oomkilled'" in matches[0].matched


def test_pasted_error_in_question_is_matched_like_a_log_line(kb: KnowledgeBase) -> None:
    question = "we get 'FATAL: sorry, too many clients already' from the api since 10:00, what now?"
    assert (
        kb.match(EvidenceProfile(question=question), limit=1)[0].signature.id == "db-max-connections-reached"
    )


def test_exception_types_are_matched_by_qualified_or_simple_name(kb: KnowledgeBase) -> None:
    qualified = kb.match(EvidenceProfile(exception_types=["java.net.UnknownHostException"]), limit=3)
    simple = kb.match(EvidenceProfile(exception_types=["UnknownHostException"]), limit=3)
    assert qualified[0].signature.id == "dns-name-not-found"
    assert simple[0].signature.id == "dns-name-not-found"
    other = kb.match(EvidenceProfile(exception_types=["com.acme.UnknownHostException"]), limit=10)
    assert "dns-name-not-found" not in [match.signature.id for match in other]


def test_metric_direction_matters(kb: KnowledgeBase) -> None:
    up = kb.match(EvidenceProfile(metric_anomalies=[MetricSignal(name="kafka_consumergroup_lag", score=3)]))
    down = kb.match(
        EvidenceProfile(
            metric_anomalies=[MetricSignal(name="kafka_consumergroup_lag", direction="down", score=3)]
        )
    )
    assert up and up[0].signature.category is Category.QUEUE_BACKLOG
    assert down == []


def test_service_tag_adds_a_little(kb: KnowledgeBase) -> None:
    line = "redis.exceptions.ConnectionError: Error 111 connecting to cache:6379. Connection refused."
    plain = kb.match(_profile(line), limit=1)[0]
    tagged = kb.match(EvidenceProfile(messages=[WeightedText(text=line)], services=["redis-cache"]), limit=1)[
        0
    ]
    assert tagged.signature.id == plain.signature.id == "redis-unavailable"
    assert tagged.score > plain.score
    assert "service 'redis-cache' matches tag 'redis'" in tagged.matched


def test_limit_and_empty_evidence(kb: KnowledgeBase) -> None:
    assert kb.match(EvidenceProfile()) == []
    assert kb.match(_profile("OOMKilled"), limit=0) == []
    assert len(kb.match(_profile("error timeout failed refused expired", "OOMKilled"), limit=2)) == 2


def test_get_unknown_signature_raises(kb: KnowledgeBase) -> None:
    with pytest.raises(NotFoundError) as info:
        kb.get("no-such-signature")
    assert "no-such-signature" in info.value.user_message
    assert kb.find("no-such-signature") is None
    assert kb.find("k8s-oomkilled") is kb.get("k8s-oomkilled")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        EvidenceProfile,
        question=st.text(max_size=200),
        messages=st.lists(
            st.builds(
                WeightedText,
                text=st.one_of(st.text(max_size=300), st.sampled_from([line for line, _ in EXAMPLES])),
                weight=st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False),
                count=st.one_of(st.none(), st.integers(min_value=0, max_value=10**9)),
            ),
            max_size=30,
        ),
        exception_types=st.lists(st.text(max_size=60), max_size=5),
        metric_anomalies=st.lists(
            st.builds(
                MetricSignal,
                name=st.text(max_size=80),
                direction=st.sampled_from(["up", "down", "none"]),
                score=st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False),
            ),
            max_size=5,
        ),
        services=st.lists(st.text(max_size=30), max_size=5),
    ),
    st.integers(min_value=-3, max_value=200),
)
def test_match_never_raises_on_arbitrary_evidence(evidence: EvidenceProfile, limit: int) -> None:
    matches = KB_FOR_PROPERTIES.match(evidence, limit=limit)
    assert len(matches) <= max(limit, 0)
    scores = [match.score for match in matches]
    assert scores == sorted(scores, reverse=True)
    for match in matches:
        assert 0.0 < match.score <= 1.0
        assert match.matched


KB_FOR_PROPERTIES = KnowledgeBase.load()


# ------------------------------------------------------------------------------------- evidence profile


def test_profile_from_report_weights_templates_and_keeps_metrics() -> None:
    now = datetime(2024, 5, 2, 10, 15, tzinfo=UTC)
    report = Report(
        summary="test",
        counts_by_service={"orders-api": 500},
        templates=[
            TemplateSummary(
                id="t1",
                template="GET /health 200",
                count=400,
                severity=Severity.INFO,
                example="GET /health 200",
            ),
            TemplateSummary(
                id="t2",
                template="java.net.UnknownHostException: <*>: Name or service not known",
                count=90,
                severity=Severity.ERROR,
                example="java.net.UnknownHostException: orders-db: Name or service not known",
                anomalous=True,
                score=3.0,
                first_seen=now,
            ),
        ],
        anomalies=[
            Anomaly(
                kind="spike",
                source="metrics",
                subject="http_request_duration_seconds",
                score=5.0,
                direction="up",
            ),
            Anomaly(kind="error_burst", source="logs", subject="t2", score=9.0),
        ],
    )
    profile = EvidenceProfile.from_report(report, question="why is orders failing?")
    assert profile.messages[0].text.startswith("java.net.UnknownHostException")
    assert profile.messages[0].weight > profile.messages[1].weight
    assert profile.messages[0].count == 90
    assert profile.exception_types == ["java.net.UnknownHostException"]
    assert [signal.name for signal in profile.metric_anomalies] == ["http_request_duration_seconds"]
    assert profile.services == ["orders-api"]
    assert KnowledgeBase.load().match(profile, limit=1)[0].signature.id == "dns-name-not-found"


# --------------------------------------------------------------------------------------- team runbooks


def test_runbook_folder_loads_yaml_and_markdown() -> None:
    kb = KnowledgeBase.load(extra_dirs=[RUNBOOKS])
    assert kb.issues == []
    builtin = len(KnowledgeBase.load().signatures)
    assert len(kb.signatures) == builtin + 4

    webhook = kb.get("payments-psp-webhook-signature-invalid")
    assert webhook.source == str(RUNBOOKS / "payments-platform.yaml")
    assert webhook.category is Category.AUTH_FAILURE and webhook.version == 2

    cart = kb.get("checkout-redis-cart-latency")
    assert cart.source == str(RUNBOOKS / "checkout-redis-latency.md")
    assert cart.notes.startswith("# Checkout latency from the cart Redis")
    titles = [step.title for step in cart.next_steps]
    assert titles == ["Read the Redis slow log", "Find who is running KEYS", "Kill the offending client"]
    assert cart.next_steps[2].command == "redis-cli -h cart-redis.checkout.svc CLIENT KILL ID <client-id>"
    assert cart.next_steps[2].why.startswith("Killing the connection frees the server")

    lag = kb.get("orders-projector-lag")
    assert [step.title for step in lag.next_steps] == ["Check the projector group", "Scale the projector"]

    evidence = EvidenceProfile(messages=[WeightedText(text="cart cache call took 1840ms for user 42")])
    assert kb.match(evidence, limit=1)[0].signature.id == "checkout-redis-cart-latency"


def test_bad_runbook_files_are_reported_and_good_ones_kept(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, folder)
    (folder / "broken.yaml").write_text(
        "schema_version: 1\n"
        "signatures:\n"
        "  - id: good-one\n"
        "    title: A valid entry next to broken ones\n"
        "    category: timeout\n"
        "    version: 1\n"
        "    patterns: ['upstream budget exhausted']\n"
        "  - id: bad-regex\n"
        "    title: Broken pattern\n"
        "    category: timeout\n"
        "    version: 1\n"
        "    patterns: ['unclosed (group']\n"
        "  - id: bad-category\n"
        "    title: Unknown category\n"
        "    category: cosmic_rays\n"
        "    version: 1\n"
        "    keywords: [bitflip]\n",
        encoding="utf-8",
    )
    (folder / "not-yaml.yaml").write_text("signatures: [\n  - id: x\n", encoding="utf-8")
    (folder / "front-matter-broken.md").write_text("---\nid: [unclosed\n---\nbody\n", encoding="utf-8")
    (folder / "README.md").write_text("# Our runbooks\n", encoding="utf-8")

    kb = KnowledgeBase.load(extra_dirs=[folder])

    assert kb.get("good-one").source == str(folder / "broken.yaml")
    for kept in (
        "payments-psp-webhook-signature-invalid",
        "checkout-redis-cart-latency",
        "orders-projector-lag",
    ):
        kb.get(kept)
    with pytest.raises(NotFoundError):
        kb.get("bad-regex")
    by_text = {str(issue): issue for issue in kb.issues}
    regex_issue = next(issue for text, issue in by_text.items() if "bad-regex" in text)
    assert regex_issue.source == str(folder / "broken.yaml")
    assert regex_issue.line == 8
    assert "signature #2 ('bad-regex')" in regex_issue.message
    assert "'unclosed (group' is not a valid regular expression" in regex_issue.message
    category_issue = next(issue for text, issue in by_text.items() if "bad-category" in text)
    assert category_issue.line == 13 and "category" in category_issue.message
    assert any(
        issue.source.endswith("not-yaml.yaml") and "not valid YAML" in issue.message for issue in kb.issues
    )
    assert any(
        issue.source.endswith("front-matter-broken.md") and "front matter" in issue.message
        for issue in kb.issues
    )
    assert any(issue.source.endswith("README.md") and issue.level == "warning" for issue in kb.issues)


def test_missing_runbook_folder_is_an_issue(tmp_path: Path) -> None:
    kb = KnowledgeBase.load(extra_dirs=[tmp_path / "nope"])
    assert [issue.source for issue in kb.issues] == [str(tmp_path / "nope")]
    assert len(kb.signatures) == len(KnowledgeBase.load().signatures)


def test_team_runbook_replaces_builtin_and_duplicates_are_reported(tmp_path: Path) -> None:
    override = (
        "id: k8s-oomkilled\n"
        "title: Our OOMKilled playbook\n"
        "category: memory_exhaustion\n"
        "version: 7\n"
        "symptoms:\n"
        "  patterns: ['OOMKilled']\n"
    )
    (tmp_path / "a.yaml").write_text(override, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(override.replace("version: 7", "version: 8"), encoding="utf-8")
    kb = KnowledgeBase.load(extra_dirs=[tmp_path])
    assert kb.get("k8s-oomkilled").version == 7
    assert kb.get("k8s-oomkilled").source == str(tmp_path / "a.yaml")
    assert [issue.source for issue in kb.issues] == [str(tmp_path / "b.yaml")]
    assert "already defined" in kb.issues[0].message


def test_broken_builtin_file_raises_naming_file_and_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_builtin_cache: None
) -> None:
    bad = tmp_path / "network.yaml"
    bad.write_text(
        "schema_version: 1\n"
        "area: network\n"
        "signatures:\n"
        "  - id: dns-thing\n"
        "    title: t\n"
        "    category: dns_failure\n"
        "    version: 1\n"
        "    patterns: ['(?P<x']\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(kbmod, "_builtin_files", lambda: [bad])
    with pytest.raises(KnowledgeFileError) as info:
        KnowledgeBase.load()
    assert "core/knowledge/network.yaml:4" in info.value.user_message
    assert "dns-thing" in info.value.user_message
    assert info.value.issues[0].line == 4


def test_duplicate_builtin_ids_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_builtin_cache: None
) -> None:
    entry = "  - {id: same, title: t, category: timeout, version: 1, keywords: [slowness]}\n"
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("schema_version: 1\nsignatures:\n" + entry, encoding="utf-8")
    second.write_text("schema_version: 1\nsignatures:\n" + entry, encoding="utf-8")
    monkeypatch.setattr(kbmod, "_builtin_files", lambda: [first, second])
    with pytest.raises(KnowledgeFileError) as info:
        KnowledgeBase.load()
    assert "already defined in core/knowledge/a.yaml" in info.value.user_message


def test_wrong_schema_version_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "future.yaml").write_text("schema_version: 9\nsignatures: []\n", encoding="utf-8")
    kb = KnowledgeBase.load(extra_dirs=[tmp_path])
    assert "schema_version 9 is not supported" in kb.issues[0].message


# ---------------------------------------------------------------------------------- model validation


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Not_Kebab"}, "kebab-case"),
        ({"category": "unknown"}, "concrete category"),
        ({"category": "cosmic_rays"}, "category"),
        ({"patterns": [".*"]}, "matches empty text"),
        ({"patterns": ["("]}, "not a valid regular expression"),
        ({"patterns": []}, "has no symptoms"),
        ({"keywords": ["  "], "patterns": []}, "empty"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_signature_validation_errors(changes: dict[str, object], message: str) -> None:
    data = {"id": "ok-id", "title": "T", "category": "timeout", "version": 1, "patterns": ["slow thing"]}
    data.update(changes)
    with pytest.raises(ValueError, match=re.escape(message)):
        Signature.model_validate(data)


def test_symptoms_block_is_flattened_and_conflicts_rejected() -> None:
    base = {"id": "ok-id", "title": "T", "category": "timeout", "version": 1}
    signature = Signature.model_validate(
        {**base, "symptoms": {"patterns": ["slow thing"], "keywords": ["slow"]}}
    )
    assert signature.patterns == ["slow thing"] and signature.keywords == ["slow"]
    with pytest.raises(ValueError, match="both at the top level and under 'symptoms'"):
        Signature.model_validate({**base, "patterns": ["a b"], "symptoms": {"patterns": ["c d"]}})


def test_markdown_steps_need_a_code_block_and_take_the_first_paragraph() -> None:
    body = (
        "Intro text.\n\n"
        "## Only prose\nNothing to run here.\n\n"
        "## Restart the consumer\nRestarting clears the stuck partition assignment.\n"
        "Second line of the same paragraph.\n\n"
        "Another paragraph.\n\n"
        "```\nkubectl rollout restart deploy/consumer\n```\n\n"
        "```\nignored second block\n```\n"
        "### No reason given\n~~~sh\nuptime\n~~~\n"
    )
    steps = runbook_steps_from_markdown(body, source_name="team.md")
    assert [step.title for step in steps] == ["Restart the consumer", "No reason given"]
    assert steps[0].command == "kubectl rollout restart deploy/consumer"
    assert (
        steps[0].why == "Restarting clears the stuck partition assignment. Second line of the same paragraph."
    )
    assert steps[1].command == "uptime" and "team.md" in steps[1].why


_YAML_BITS = st.sampled_from(
    [
        "schema_version: 1\n",
        "signatures:\n",
        "  - id: some-id\n",
        "    title: A title\n",
        "    category: timeout\n",
        "    category: nonsense\n",
        "    version: 1\n",
        "    patterns: ['slow (thing']\n",
        "    patterns: ['upstream budget exhausted']\n",
        "    symptoms: {keywords: [budget]}\n",
        "    next_steps: [{title: T, why: W}]\n",
        "---\n",
        "id: [\n",
        ": :\n",
        "\t- x\n",
        "## Heading\n",
        "```\nrun me\n```\n",
        "Some prose.\n",
    ]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pieces=st.lists(st.one_of(_YAML_BITS, st.text(max_size=40)), max_size=14),
    suffix=st.sampled_from([".yaml", ".md"]),
)
def test_runbook_loader_never_raises_and_names_the_file(
    tmp_path: Path, pieces: list[str], suffix: str
) -> None:
    folder = tmp_path / "case"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / f"runbook{suffix}"
    path.write_text("".join(pieces), encoding="utf-8", errors="surrogatepass")
    issues: list[ParseIssue] = []
    signatures = kbmod.load_runbook_file(path, issues)
    for signature in signatures:
        assert signature.source == str(path)
    for issue in issues:
        assert issue.source == str(path)
        assert issue.message


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_YAML_BITS, st.text(max_size=60)), max_size=20))
def test_markdown_steps_never_raise(pieces: list[str]) -> None:
    for step in runbook_steps_from_markdown("".join(pieces), source_name="x.md"):
        assert step.title and step.command and step.why


def test_signature_matches_text_and_metric(kb: KnowledgeBase) -> None:
    hikari = kb.get("hikari-pool-exhausted")
    assert hikari.matches_text("HikariPool-2 - Connection is not available, request timed out after 5000ms.")
    assert hikari.matches_text("Caused by: java.sql.SQLTransientConnectionException: pool busy")
    assert not hikari.matches_text("HikariPool-1 - Pool stats (total=10, active=3, idle=7, waiting=0)")
    assert hikari.matches_metric('hikaricp_connections_pending{pool="HikariPool-1"}')
    assert not hikari.matches_metric("node_filesystem_avail_bytes")
