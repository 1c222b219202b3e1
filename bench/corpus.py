"""Deterministic, labelled corpora of realistic log lines for the template-mining benchmark.

``generate(lines, seed=...)`` yields :class:`CorpusLine` items: the raw line as a system would write it
(header and all), the message part after the header, and the ground-truth event the line was made from
(``style:index``). Twelve styles are mixed (HDFS, Spring/logback, nginx access and error, syslog
sshd/kernel, kubelet klog, PostgreSQL, Python logging, Go logfmt, OpenStack nova, Redis, Spark), each
with dozens of events whose frequencies fall off like real logs (a few events dominate, many are rare).
Values are realistic: addresses, ports, pod names, UUIDs, paths, durations, sizes, user and table names.

Run as a script to write a corpus file: ``python -m bench.corpus OUT.log --lines 1000000 [--labels L.tsv]``.
"""

from __future__ import annotations

import argparse
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
USERS = ("root", "admin", "alice", "bob", "deploy", "ubuntu", "postgres", "git", "jenkins", "oracle", "test")
SERVICES = ("checkout", "payments", "cart", "catalog", "auth", "search", "inventory", "shipping", "gateway")
NAMESPACES = ("default", "prod", "staging", "kube-system", "monitoring", "payments")
TABLES = ("orders", "users", "payments", "sessions", "inventory_items", "audit_log", "carts")
ROUTES = (
    "/api/v1/orders/{n}",
    "/api/v1/users/{n}/profile",
    "/api/v2/cart/{n}/items",
    "/static/js/app.{h}.js",
    "/healthz",
    "/api/v1/search",
    "/login",
    "/api/v1/payments/{n}/capture",
    "/images/products/{n}.jpg",
)
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "curl/7.88.1",
    "kube-probe/1.28",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
JAVA_CLASSES = (
    "com.shop.order.OrderService",
    "com.shop.payment.PaymentClient",
    "com.shop.cart.CartController",
    "com.zaxxer.hikari.pool.HikariPool",
    "org.apache.kafka.clients.consumer.KafkaConsumer",
    "com.shop.inventory.StockReserver",
)
STATES = ("RUNNING", "PENDING", "FAILED", "SUCCEEDED", "KILLED")


@dataclass(frozen=True, slots=True)
class CorpusLine:
    raw: str
    message: str
    event: str


class Values:
    """Realistic values for template slots, all drawn from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def ip(self) -> str:
        r = self.rng
        first = r.choice((10, 172, 192, 34, 52, 81))
        return f"{first}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def ipv6(self) -> str:
        r = self.rng
        return (
            "2001:db8:"
            + ":".join(f"{r.randrange(65536):x}" for _ in range(3))
            + "::"
            + f"{r.randrange(1, 999)}"
        )

    def port(self) -> str:
        return str(self.rng.randrange(1024, 65535))

    def num(self, low: int = 0, high: int = 100_000) -> str:
        return str(self.rng.randrange(low, high))

    def ms(self) -> str:
        return f"{self.rng.randrange(1, 5000)}ms"

    def secs(self) -> str:
        return f"{self.rng.uniform(0.01, 90):.{self.rng.choice((1, 2, 3))}f}s"

    def float(self, high: float = 100.0) -> str:
        return f"{self.rng.uniform(0, high):.3f}"

    def size(self) -> str:
        return f"{self.rng.choice((64, 128, 256, 512, 1024, 2048, 3.5, 1.5))}{self.rng.choice(('MB', 'GB', 'KB', 'MiB', 'Gi'))}"

    def hexstr(self, n: int) -> str:
        while True:
            out = "".join(self.rng.choice("0123456789abcdef") for _ in range(n))
            if any(c.isdigit() for c in out) and any(c.isalpha() for c in out):
                return out

    def uuid(self) -> str:
        h = self.hexstr(32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def k8s_suffix(self, n: int) -> str:
        while True:
            out = "".join(self.rng.choice(K8S_ALPHABET) for _ in range(n))
            if any(c.isdigit() for c in out):
                return out

    def pod(self) -> str:
        return f"{self.rng.choice(SERVICES)}-{self.k8s_suffix(self.rng.choice((9, 10)))}-{self.k8s_suffix(5)}"

    def user(self) -> str:
        return self.rng.choice(USERS)

    def svc(self) -> str:
        return self.rng.choice(SERVICES)

    def ns(self) -> str:
        return self.rng.choice(NAMESPACES)

    def table(self) -> str:
        return self.rng.choice(TABLES)

    def route(self) -> str:
        return self.rng.choice(ROUTES).format(n=self.num(1, 99999), h=self.hexstr(8))

    def path(self) -> str:
        r = self.rng
        return r.choice(
            (
                f"/var/lib/kubelet/pods/{self.uuid()}/volumes",
                f"/data/{r.choice(('hdfs', 'pg', 'redis'))}/{self.num(1, 64)}/current",
                f"/var/log/{self.svc()}/{self.svc()}.log",
                f"/tmp/upload-{self.hexstr(12)}.part",
                f"/etc/{self.svc()}/config.yaml",
            )
        )

    def url(self) -> str:
        return f"http://{self.svc()}.{self.ns()}.svc.cluster.local:{self.rng.choice((80, 8080, 9090))}{self.route()}"

    def email(self) -> str:
        return f"{self.user()}{self.num(1, 999)}@{self.rng.choice(('example.com', 'shop.io', 'corp.net'))}"

    def host(self) -> str:
        return f"{self.rng.choice(('web', 'db', 'worker', 'cache'))}{self.rng.randrange(1, 40):02d}"

    def blk(self) -> str:
        return f"blk_{self.rng.choice(('', '-'))}{self.rng.randrange(10**17, 10**19)}"

    def state(self) -> str:
        return self.rng.choice(STATES)

    def word(self) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase) for _ in range(self.rng.randrange(4, 9)))

    def iso(self) -> str:
        return (datetime(2024, 3, 1, tzinfo=UTC) + timedelta(seconds=self.rng.randrange(10**7))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    def cls(self) -> str:
        return self.rng.choice(JAVA_CLASSES)


def _fill(template: str, values: Values) -> str:
    """Replace each ``{slot}`` or ``{slot:args}`` in ``template`` with a fresh value; ``{{``/``}}`` are braces."""
    out: list[str] = []
    pos = 0
    size = len(template)
    while pos < size:
        ch = template[pos]
        if ch in "{}" and template[pos + 1 : pos + 2] == ch:
            out.append(ch)
            pos += 2
            continue
        if ch != "{":
            nxt = min((i for i in (template.find("{", pos), template.find("}", pos)) if i >= 0), default=size)
            if nxt == pos:
                nxt += 1
            out.append(template[pos:nxt])
            pos = nxt
            continue
        end = template.index("}", pos)
        slot, _, arg = template[pos + 1 : end].partition(":")
        getter: Callable[..., str] = getattr(values, slot)
        numbers = [float(a) if "." in a else int(a) for a in arg.split("-")] if arg else []
        out.append(getter(*numbers))
        pos = end + 1
    return "".join(out)


# --- the styles: header makers and event templates -----------------------------------------------------------

Header = Callable[[datetime, Values, str, int], str]


def _pick(options: tuple[str, ...], event: int) -> str:
    """The logger/component of an event: fixed per event, as in real code."""
    return options[event % len(options)]


def _hdfs(ts: datetime, v: Values, level: str, event: int) -> str:
    component = _pick(
        ("dfs.DataNode$PacketResponder", "dfs.DataNode", "dfs.FSNamesystem", "dfs.DataNode$DataXceiver"),
        event,
    )
    return f"{ts:%y%m%d %H%M%S} {v.num(1, 5000)} {level} {component}: "


def _logback(ts: datetime, v: Values, level: str, event: int) -> str:
    thread = v.rng.choice(
        ("main", f"http-nio-8080-exec-{v.num(1, 200)}", f"pool-2-thread-{v.num(1, 16)}", "scheduling-1")
    )
    return f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} {level:<5} [{thread}] {_pick(JAVA_CLASSES, event)} - "


def _nginx_access(ts: datetime, v: Values, level: str, event: int) -> str:
    return ""


def _nginx_error(ts: datetime, v: Values, level: str, event: int) -> str:
    pid = v.num(100, 9999)
    return f"{ts:%Y/%m/%d %H:%M:%S} [{level}] {pid}#{pid}: *{v.num(1, 999999)} "


def _syslog(ts: datetime, v: Values, level: str, event: int) -> str:
    proc = level
    return f"{MONTHS[ts.month - 1]} {ts.day:>2} {ts:%H:%M:%S} {v.host()} {proc}: "


def _klog(ts: datetime, v: Values, level: str, event: int) -> str:
    source = _pick(
        ("kubelet.go:2457", "pod_workers.go:1298", "kuberuntime_manager.go:1027", "prober.go:107"), event
    )
    return f"{level[0]}{ts:%m%d %H:%M:%S}.{ts.microsecond:06d}    {v.num(800, 2000)} {source}] "


def _postgres(ts: datetime, v: Values, level: str, event: int) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} UTC [{v.num(100, 99999)}] {level}:  "


def _python(ts: datetime, v: Values, level: str, event: int) -> str:
    logger = _pick(
        ("app.worker", "app.api.orders", "celery.worker.strategy", "app.db", "urllib3.connectionpool"), event
    )
    return f"{ts:%Y-%m-%d %H:%M:%S},{ts.microsecond // 1000:03d} - {logger} - {level} - "


def _logfmt(ts: datetime, v: Values, level: str, event: int) -> str:
    return f"time={ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z level={level.lower()} "


def _openstack(ts: datetime, v: Values, level: str, event: int) -> str:
    component = _pick(
        ("nova.compute.manager", "nova.osapi_compute.wsgi.server", "nova.scheduler.host_manager"), event
    )
    return (
        f"{ts:%Y-%m-%d %H:%M:%S}.{ts.microsecond // 1000:03d} {v.num(20000, 30000)} {level} {component} "
        f"[req-{v.uuid()} {v.hexstr(32)} {v.hexstr(32)} - - -] "
    )


def _redis(ts: datetime, v: Values, level: str, event: int) -> str:
    mark = {"INFO": "*", "WARN": "#", "DEBUG": "-"}.get(level, "*")
    return f"{v.num(1, 99999)}:{v.rng.choice('MSC')} {ts.day:02d} {MONTHS[ts.month - 1]} {ts:%Y %H:%M:%S}.{ts.microsecond // 1000:03d} {mark} "


def _spark(ts: datetime, v: Values, level: str, event: int) -> str:
    component = _pick(
        ("executor.Executor", "storage.BlockManager", "scheduler.TaskSetManager", "spark.SparkContext"), event
    )
    return f"{ts:%y/%m/%d %H:%M:%S} {level} {component}: "


# Each event: (level, template). Slots are Values methods, e.g. {ip}, {num:1-100}.
STYLES: dict[str, tuple[Header, list[tuple[str, str]]]] = {
    "hdfs": (
        _hdfs,
        [
            ("INFO", "Receiving block {blk} src: /{ip}:{port} dest: /{ip}:50010"),
            ("INFO", "Received block {blk} of size {num:1000-67108864} from /{ip}"),
            ("INFO", "PacketResponder {num:0-3} for block {blk} terminating"),
            (
                "INFO",
                "BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip}:50010 is added to {blk} size {num:1000-67108864}",
            ),
            ("INFO", "BLOCK* NameSystem.allocateBlock: {path} {blk}"),
            ("INFO", "Deleting block {blk} file {path}"),
            ("INFO", "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {ip}:50010"),
            ("INFO", "Verification succeeded for {blk}"),
            ("WARN", "{ip}:50010:Got exception while serving {blk} to /{ip}:"),
            ("INFO", "{ip}:50010 Served block {blk} to /{ip}"),
            ("WARN", "PacketResponder {blk} {num:0-3} Exception java.io.IOException: Broken pipe"),
            ("INFO", "Received block {blk} src: /{ip}:{port} dest: /{ip}:50010 of size {num:1000-67108864}"),
            ("INFO", "BLOCK* ask {ip}:50010 to replicate {blk} to datanode(s) {ip}:50010"),
            ("INFO", "BLOCK* ask {ip}:50010 to delete {blk}"),
            ("WARN", "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap."),
            ("INFO", "Starting thread to transfer block {blk} to {ip}:50010"),
            ("INFO", "Transmitted block {blk} to /{ip}:50010"),
            ("WARN", "writeBlock {blk} received exception java.io.IOException: Connection reset by peer"),
            (
                "INFO",
                "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} on {ip}:50010 size {num:1000-67108864}",
            ),
            (
                "ERROR",
                "DataXceiver error processing WRITE_BLOCK operation src: /{ip}:{port} dst: /{ip}:50010",
            ),
            (
                "INFO",
                "Changing block file offset of block {blk} from {num:0-6000000} to {num:0-6000000} meta file offset to {num:0-50000}",
            ),
            ("WARN", "Slow BlockReceiver write packet to mirror took {ms} (threshold=300ms)"),
        ],
    ),
    "logback": (
        _logback,
        [
            ("INFO", "Order {num:100000-999999} created for customer {num:1-99999} with {num:1-20} items"),
            ("INFO", "Payment authorized for order {num:100000-999999} amount={float:500} currency=USD"),
            ("WARN", "Retrying call to {url} (attempt {num:1-5} of 5) after {ms}"),
            (
                "ERROR",
                "Failed to reserve stock for order {num:100000-999999}: insufficient quantity for sku {hexstr:8}",
            ),
            (
                "INFO",
                "HikariPool-1 - Pool stats (total={num:1-50}, active={num:0-50}, idle={num:0-50}, waiting={num:0-200})",
            ),
            ("WARN", "HikariPool-1 - Connection is not available, request timed out after {ms}."),
            ("INFO", "Started OrderApplication in {float:60} seconds (process running for {float:90})"),
            ("INFO", "Tomcat started on port(s): 8080 (http) with context path ''"),
            ("INFO", "Completed request GET {route} status={num:200-599} in {ms}"),
            ("ERROR", "Unhandled exception while processing request {uuid}"),
            ("WARN", "Circuit breaker payment-client changed state from CLOSED to OPEN"),
            ("INFO", "Circuit breaker payment-client changed state from OPEN to HALF_OPEN"),
            (
                "INFO",
                "[Consumer clientId=consumer-orders-{num:1-9}, groupId=orders] Seeking to offset {num:0-9999999} for partition orders-{num:0-24}",
            ),
            (
                "WARN",
                "[Consumer clientId=consumer-orders-{num:1-9}, groupId=orders] Offset commit failed on partition orders-{num:0-24} at offset {num:0-9999999}: The request timed out.",
            ),
            ("INFO", "Cache miss for key product:{num:1-99999}, loading from database"),
            ("DEBUG", "Executing query on table {table} took {ms}"),
            ("INFO", "User {email} logged in from {ip}"),
            ("WARN", "User {email} failed login attempt {num:1-10} from {ip}"),
            ("INFO", "Scheduled job cleanupExpiredCarts finished, removed {num:0-5000} carts in {ms}"),
            ("ERROR", "Could not connect to Redis at {ip}:6379: Connection refused"),
            ("INFO", "Shipment {uuid} dispatched via {svc} to zone {num:1-12}"),
            ("WARN", "Slow query detected ({ms}) on {table}"),
            ("INFO", "Refund {uuid} processed for order {num:100000-999999}"),
            ("ERROR", "Payment gateway returned HTTP {num:500-504} for order {num:100000-999999}"),
            ("INFO", "Loaded {num:1-500} feature flags from {url}"),
        ],
    ),
    "nginx_access": (
        _nginx_access,
        [
            ("INFO", '{ip} - - [{clf}] "GET {route} HTTP/1.1" {status} {num:100-90000} "-" "{agent}"'),
            (
                "INFO",
                '{ip} - - [{clf}] "POST {route} HTTP/1.1" {status} {num:100-9000} "https://shop.example.com/" "{agent}"',
            ),
            ("INFO", '{ip} - {user} [{clf}] "PATCH {route} HTTP/2.0" {status} {num:100-90000} "-" "{agent}"'),
            ("INFO", '{ip} - - [{clf}] "PUT {route} HTTP/1.1" {status} {num:100-900} "-" "{agent}"'),
            ("INFO", '{ip} - - [{clf}] "HEAD {route} HTTP/1.1" {status} 0 "-" "{agent}"'),
            ("INFO", '{ip} - - [{clf}] "DELETE {route} HTTP/1.1" {status} 0 "-" "{agent}"'),
            ("INFO", '{ip} - - [{clf}] "OPTIONS * HTTP/1.1" 200 0 "-" "{agent}"'),
        ],
    ),
    "nginx_error": (
        _nginx_error,
        [
            (
                "error",
                'connect() failed (111: Connection refused) while connecting to upstream, client: {ip}, server: shop.example.com, request: "GET {route} HTTP/1.1", upstream: "{url}", host: "shop.example.com"',
            ),
            (
                "error",
                'upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip}, server: shop.example.com, request: "POST {route} HTTP/1.1", upstream: "{url}", host: "shop.example.com"',
            ),
            (
                "warn",
                "an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{num:1-9}/{num:10-99}/{num:1000000000-9999999999} while reading upstream, client: {ip}, server: shop.example.com",
            ),
            (
                "error",
                'open() "/usr/share/nginx/html{route}" failed (2: No such file or directory), client: {ip}, server: shop.example.com',
            ),
            (
                "error",
                "no live upstreams while connecting to upstream, client: {ip}, server: shop.example.com",
            ),
            ("warn", 'conflicting server name "shop.example.com" on 0.0.0.0:80, ignored'),
            (
                "error",
                "SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: {ip}, server: 0.0.0.0:443",
            ),
            (
                "error",
                'limiting requests, excess: {float:20} by zone "api", client: {ip}, server: shop.example.com',
            ),
            ("info", "client {ip} closed keepalive connection"),
            (
                "error",
                "recv() failed (104: Connection reset by peer) while reading response header from upstream, client: {ip}, server: shop.example.com",
            ),
            (
                "warn",
                "client intended to send too large body: {num:1000000-90000000} bytes, client: {ip}, server: shop.example.com",
            ),
        ],
    ),
    "syslog": (
        _syslog,
        [
            ("sshd[{num:1000-65000}]", "Failed password for {user} from {ip} port {port} ssh2"),
            (
                "sshd[{num:1000-65000}]",
                "Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{hexstr:43}",
            ),
            ("sshd[{num:1000-65000}]", "Invalid user {word} from {ip} port {port}"),
            (
                "sshd[{num:1000-65000}]",
                "Connection closed by authenticating user {user} {ip} port {port} [preauth]",
            ),
            ("sshd[{num:1000-65000}]", "Received disconnect from {ip} port {port}:11: Bye Bye [preauth]"),
            (
                "sshd[{num:1000-65000}]",
                "pam_unix(sshd:session): session opened for user {user}(uid={num:0-2000}) by (uid=0)",
            ),
            ("sshd[{num:1000-65000}]", "pam_unix(sshd:session): session closed for user {user}"),
            ("sshd[{num:1000-65000}]", "Disconnected from user {user} {ip} port {port}"),
            (
                "kernel",
                "[{float:900000}] Out of memory: Killed process {num:1000-65000} (java) total-vm:{num:1000000-9000000}kB, anon-rss:{num:100000-8000000}kB, file-rss:0kB, shmem-rss:0kB",
            ),
            (
                "kernel",
                "[{float:900000}] EXT4-fs (sda{num:1-4}): mounted filesystem with ordered data mode. Opts: (null)",
            ),
            (
                "kernel",
                "[{float:900000}] TCP: request_sock_TCP: Possible SYN flooding on port {num:80-9000}. Sending cookies.",
            ),
            ("kernel", "[{float:900000}] nf_conntrack: table full, dropping packet"),
            ("kernel", "[{float:900000}] eth0: Link is Up - 10Gbps Full Duplex, Flow Control: None"),
            ("CRON[{num:1000-65000}]", "({user}) CMD (/usr/local/bin/backup.sh > /dev/null 2>&1)"),
            ("systemd[1]", "Started Session {num:1-9999} of user {user}."),
            ("systemd[1]", "{svc}.service: Main process exited, code=exited, status={num:1-255}/FAILURE"),
            ("systemd[1]", "{svc}.service: Scheduled restart job, restart counter is at {num:1-50}."),
            (
                "sudo",
                "{user} : TTY=pts/{num:0-9} ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart {svc}",
            ),
        ],
    ),
    "klog": (
        _klog,
        [
            (
                "I",
                '"SyncLoop (PLEG): event for pod" pod="{ns}/{pod}" event={{ID:{uuid} Type:ContainerStarted}}',
            ),
            (
                "I",
                '"Killing container with a grace period" pod="{ns}/{pod}" podUID={uuid} containerName="{svc}" containerID="containerd://{hexstr:64}" gracePeriod={num:0-60}',
            ),
            (
                "E",
                '"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"{svc}\\" with CrashLoopBackOff" pod="{ns}/{pod}" podUID={uuid}',
            ),
            (
                "W",
                '"Readiness probe failed" probeType="Readiness" pod="{ns}/{pod}" podUID={uuid} containerName="{svc}" probeResult="failure" output="Get \\"http://{ip}:8080/ready\\": dial tcp {ip}:8080: connect: connection refused"',
            ),
            (
                "I",
                '"Probe failed" probeType="Liveness" pod="{ns}/{pod}" podUID={uuid} containerName="{svc}" probeResult="failure"',
            ),
            ("I", '"RemoveContainer" containerID="{hexstr:64}"'),
            ("E", '"Eviction manager: pods evicted, waiting for pod to be cleaned up" pods=["{ns}/{pod}"]'),
            ("W", '"Eviction manager: attempting to reclaim" resourceName="memory"'),
            (
                "I",
                '"Successfully pulled image" image="registry.example.com/{svc}:v{num:1-9}.{num:0-30}.{num:0-9}" duration="{secs}"',
            ),
            (
                "E",
                '"Failed to pull image" image="registry.example.com/{svc}:v{num:1-9}.{num:0-30}.{num:0-9}" err="rpc error: code = NotFound"',
            ),
            ("I", '"SyncLoop ADD" source="api" pods=["{ns}/{pod}"]'),
            ("I", '"SyncLoop DELETE" source="api" pods=["{ns}/{pod}"]'),
            (
                "I",
                '"Volume detached for volume" volumeName="kubernetes.io/projected/{uuid}-kube-api-access" nodeName="{host}" devicePath=""',
            ),
            (
                "W",
                '"Container runtime network not ready" networkReady="NetworkReady=false reason:NetworkPluginNotReady"',
            ),
            (
                "I",
                '"Observed pod startup duration" pod="{ns}/{pod}" podStartSLOduration={float:60} observedRunningTime="{iso}"',
            ),
            (
                "E",
                '"Unable to attach or mount volumes for pod" pod="{ns}/{pod}" err="timed out waiting for the condition"',
            ),
        ],
    ),
    "postgres": (
        _postgres,
        [
            ("LOG", "checkpoint starting: time"),
            (
                "LOG",
                "checkpoint complete: wrote {num:1-9000} buffers ({float:50}%); 0 WAL file(s) added, 0 removed, {num:0-9} recycled; write={float:300} s, sync={float:2} s, total={float:300} s",
            ),
            ("LOG", "duration: {float:9000} ms  statement: SELECT * FROM {table} WHERE id = {num:1-999999}"),
            ("ERROR", 'duplicate key value violates unique constraint "{table}_pkey"'),
            ("ERROR", "deadlock detected"),
            ("FATAL", 'password authentication failed for user "{user}"'),
            ("FATAL", "remaining connection slots are reserved for non-replication superuser connections"),
            ("LOG", "connection received: host={ip} port={port}"),
            ("LOG", "connection authorized: user={user} database={table} application_name=psql"),
            (
                "LOG",
                "disconnection: session time: {num:0-9}:{num:10-59}:{num:10-59}.{num:100-999} user={user} database={table} host={ip} port={port}",
            ),
            ("LOG", 'automatic vacuum of table "shop.public.{table}": index scans: {num:0-3}'),
            ("LOG", 'automatic analyze of table "shop.public.{table}"'),
            ("ERROR", "canceling statement due to statement timeout"),
            ("ERROR", 'relation "{table}_archive" does not exist at character {num:10-300}'),
            ("LOG", "could not receive data from client: Connection reset by peer"),
            ("WARNING", "there is no transaction in progress"),
            (
                "LOG",
                'temporary file: path "base/pgsql_tmp/pgsql_tmp{num:1000-99999}.{num:0-20}", size {num:10000-900000000}',
            ),
            ("FATAL", 'database "{word}" does not exist'),
        ],
    ),
    "python": (
        _python,
        [
            ("INFO", "Task {uuid} succeeded in {float:30}s: None"),
            ("INFO", "Received task: app.tasks.send_email[{uuid}]"),
            ("ERROR", "Task app.tasks.charge_card[{uuid}] raised unexpected: TimeoutError('timed out')"),
            (
                "WARNING",
                "Retrying (Retry(total={num:0-4}, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError': /v1/charges",
            ),
            ("INFO", "Starting new HTTPS connection ({num:1-9}): api.stripe.com:443"),
            ("DEBUG", 'https://api.stripe.com:443 "POST /v1/charges HTTP/1.1" {num:200-503} {num:100-5000}'),
            ("INFO", "Processed order {num:100000-999999} for {email} in {ms}"),
            ("ERROR", "Database connection lost, reconnecting in {secs}"),
            ("WARNING", "Queue {svc}-events backlog is {num:1000-90000} messages"),
            ("INFO", "Worker pid {num:1000-65000} booted with {num:1-16} threads"),
            (
                "ERROR",
                "Failed to parse payload from {ip}: Expecting value: line 1 column {num:1-80} (char {num:0-80})",
            ),
            ("INFO", "Cache warmed: {num:100-90000} keys loaded in {secs}"),
            ("WARNING", "Slow handler /api/orders took {secs} (budget 0.5s)"),
            ("INFO", "Uploaded {path} to s3://backups/{svc}/{num:1000-9999} ({size})"),
            ("CRITICAL", "Disk usage at {num:90-100}% on /data, refusing writes"),
            ("INFO", "Scheduler tick: {num:0-50} jobs due, {num:0-50} running"),
        ],
    ),
    "logfmt": (
        _logfmt,
        [
            (
                "INFO",
                'msg="request completed" method={method} path={route} status={status} duration={ms} remote={ip}:{port}',
            ),
            ("INFO", 'msg="request started" method={method} path={route} remote={ip}:{port}'),
            (
                "ERROR",
                'msg="upstream request failed" upstream={url} err="context deadline exceeded" attempt={num:1-5}',
            ),
            ("WARN", 'msg="rate limit exceeded" client={ip} limit={num:10-1000} window=1m'),
            ("INFO", 'msg="cache refreshed" entries={num:0-90000} took={ms}'),
            ("INFO", 'msg="leader elected" node={host} term={num:1-999}'),
            ("WARN", 'msg="slow consumer" topic=orders partition={num:0-24} lag={num:1000-900000}'),
            (
                "ERROR",
                'msg="failed to write batch" rows={num:1-5000} err="pq: could not serialize access due to concurrent update"',
            ),
            ("INFO", 'msg="shutting down" signal=SIGTERM inflight={num:0-100}'),
            ("INFO", 'msg="config reloaded" version={hexstr:12} checksum={hexstr:40}'),
            ("DEBUG", 'msg="dns lookup" host={svc}.{ns}.svc.cluster.local addrs={ip} took={ms}'),
            (
                "ERROR",
                'msg="tls handshake error" remote={ip}:{port} err="remote error: tls: bad certificate"',
            ),
            ("INFO", 'msg="job scheduled" job_id={uuid} queue={svc} eta={iso}'),
            ("WARN", 'msg="memory usage high" heap_inuse={size} gc_pause={ms}'),
        ],
    ),
    "openstack": (
        _openstack,
        [
            (
                "INFO",
                '{ip} "GET /v2/{hexstr:32}/servers/detail HTTP/1.1" status: 200 len: {num:1000-3000} time: {float:1}',
            ),
            (
                "INFO",
                '{ip} "POST /v2/{hexstr:32}/os-server-external-events HTTP/1.1" status: 200 len: {num:300-600} time: {float:1}',
            ),
            (
                "INFO",
                '{ip} "DELETE /v2/{hexstr:32}/servers/{uuid} HTTP/1.1" status: 204 len: 203 time: {float:1}',
            ),
            ("INFO", "[instance: {uuid}] VM Started (Lifecycle Event)"),
            ("INFO", "[instance: {uuid}] VM Stopped (Lifecycle Event)"),
            ("INFO", "[instance: {uuid}] VM Paused (Lifecycle Event)"),
            ("INFO", "[instance: {uuid}] Took {float:30} seconds to spawn the instance on the hypervisor."),
            ("INFO", "[instance: {uuid}] Took {float:30} seconds to build instance."),
            ("INFO", "[instance: {uuid}] Terminating instance"),
            ("INFO", "[instance: {uuid}] Deleting instance files {path}"),
            (
                "INFO",
                "[instance: {uuid}] Attempting claim: memory {num:512-16384} MB, disk {num:1-200} GB, vcpus {num:1-16} CPU",
            ),
            ("INFO", "[instance: {uuid}] Claim successful"),
            (
                "WARN",
                "[instance: {uuid}] Instance shutdown by itself. Calling the stop API. Current vm_state: active, current task_state: None",
            ),
            ("INFO", "Compute_service record updated for {host}:{host}.example.org"),
            ("WARN", "Unknown base file: /var/lib/nova/instances/_base/{hexstr:40}"),
            ("ERROR", "[instance: {uuid}] Instance failed to spawn"),
        ],
    ),
    "redis": (
        _redis,
        [
            ("INFO", "Background saving started by pid {num:1000-65000}"),
            ("INFO", "DB saved on disk"),
            ("INFO", "Background saving terminated with success"),
            ("INFO", "{num:1-10000} changes in {num:60-900} seconds. Saving..."),
            ("INFO", "RDB: {num:0-500} MB of memory used by copy-on-write"),
            ("INFO", "Fork CoW for RDB: current {num:0-500} MB, peak {num:0-500} MB, average {num:0-300} MB"),
            ("INFO", "Connecting to MASTER {ip}:6379"),
            ("INFO", "MASTER <-> REPLICA sync started"),
            ("WARN", "Error condition on socket for SYNC: Connection refused"),
            ("INFO", "Replica {ip}:6379 asks for synchronization"),
            ("INFO", "Synchronization with replica {ip}:6379 succeeded"),
            (
                "WARN",
                "WARNING: 32 bit instance detected but no memory limit set. Setting 3 GB maxmemory limit with 'noeviction' policy now.",
            ),
            (
                "INFO",
                "Client id={num:1-99999} addr={ip}:{port} laddr={ip}:6379 fd={num:5-900} name= closed for overcoming of output buffer limits.",
            ),
            ("DEBUG", "Accepted {ip}:{port}"),
        ],
    ),
    "spark": (
        _spark,
        [
            ("INFO", "Running task {num:0-999}.0 in stage {num:0-99}.0 (TID {num:0-99999})"),
            (
                "INFO",
                "Finished task {num:0-999}.0 in stage {num:0-99}.0 (TID {num:0-99999}). {num:1000-9999} bytes result sent to driver",
            ),
            ("INFO", "Found block rdd_{num:0-99}_{num:0-999} locally"),
            (
                "INFO",
                "Block broadcast_{num:0-99} stored as values in memory (estimated size {float:900} KB, free {float:900} MB)",
            ),
            ("INFO", "Started reading broadcast variable {num:0-99}"),
            ("INFO", "Reading broadcast variable {num:0-99} took {num:0-900} ms"),
            (
                "WARN",
                "Lost task {num:0-999}.0 in stage {num:0-99}.0 (TID {num:0-99999}, {host}, executor {num:1-64}): ExecutorLostFailure (executor {num:1-64} exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits.",
            ),
            ("INFO", "Starting job: collect at {word}.scala:{num:10-300}"),
            ("INFO", "Job {num:0-999} finished: collect at {word}.scala:{num:10-300}, took {float:90} s"),
            ("INFO", "Registered signal handlers for [TERM, HUP, INT]"),
            ("INFO", "Partition rdd_{num:0-99}_{num:0-999} not found, computing it"),
            ("ERROR", "Exception in task {num:0-999}.0 in stage {num:0-99}.0 (TID {num:0-99999})"),
            (
                "INFO",
                "Removed broadcast_{num:0-99}_piece0 on {ip}:{port} in memory (size: {float:90} KB, free: {float:900} MB)",
            ),
        ],
    ),
}

# How common each style is in the mixed corpus.
STYLE_WEIGHTS: dict[str, float] = {
    "hdfs": 2.0,
    "logback": 2.0,
    "nginx_access": 2.5,
    "nginx_error": 0.7,
    "syslog": 1.2,
    "klog": 1.2,
    "postgres": 1.0,
    "python": 1.2,
    "logfmt": 1.5,
    "openstack": 1.0,
    "redis": 0.5,
    "spark": 1.2,
}


def _event_weights(count: int, rng: random.Random) -> list[float]:
    """Zipf-like weights in a shuffled order: a few events dominate, many are rare."""
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(count)]
    rng.shuffle(weights)
    return weights


def clf_time(ts: datetime) -> str:
    """A time as the Common Log Format writes it: ``01/Mar/2024:00:00:00 +0000``."""
    return f"{ts.day:02d}/{MONTHS[ts.month - 1]}/{ts:%Y:%H:%M:%S} +0000"


class AccessLogValues(Values):
    """Values with the access-log slots (CLF time, status, method, user agent) that EXTRA_EVENTS use."""

    def clf(self) -> str:
        return clf_time(datetime(2024, 3, 1, tzinfo=UTC) + timedelta(seconds=self.rng.randrange(10**7)))

    def status(self) -> str:
        return self.rng.choices(
            ("200", "201", "204", "301", "304", "400", "404", "429", "500", "502", "503"),
            weights=(70, 5, 5, 2, 6, 2, 4, 1, 2, 2, 1),
        )[0]

    def method(self) -> str:
        return self.rng.choice(("GET", "POST", "PUT", "DELETE", "PATCH"))

    def agent(self) -> str:
        return self.rng.choice(AGENTS)


def generate(lines: int, *, seed: int = 7) -> Iterator[CorpusLine]:
    """``lines`` labelled lines, the same for the same seed."""
    rng = random.Random(seed)
    values = AccessLogValues(rng)
    styles = list(STYLES)
    style_weights = [STYLE_WEIGHTS[s] for s in styles]
    event_weights = {s: _event_weights(len(STYLES[s][1]), rng) for s in styles}
    clock = datetime(2024, 3, 1, 0, 0, 0, tzinfo=UTC)
    chosen_styles = rng.choices(styles, weights=style_weights, k=lines)
    for style in chosen_styles:
        header_of, events = STYLES[style]
        index = rng.choices(range(len(events)), weights=event_weights[style])[0]
        level, template = events[index]
        clock += timedelta(microseconds=rng.randrange(1, 20_000))
        message = _fill(template, values)
        if style == "syslog":
            level = _fill(level, values)
        header = header_of(clock, values, level, index)
        yield CorpusLine(raw=header + message, message=message, event=f"{style}:{index}")


def event_count() -> int:
    return sum(len(events) for _, events in STYLES.values())


def main() -> int:
    parser = argparse.ArgumentParser(description="Write a labelled, generated log corpus.")
    parser.add_argument("out", help="Where to write the raw lines.")
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--labels", help="Also write the ground-truth event of each line, one per line.")
    args = parser.parse_args()
    with open(args.out, "w", encoding="utf-8") as out:
        labels = open(args.labels, "w", encoding="utf-8") if args.labels else None  # noqa: SIM115
        try:
            for item in generate(args.lines, seed=args.seed):
                out.write(item.raw + "\n")
                if labels is not None:
                    labels.write(item.event + "\n")
        finally:
            if labels is not None:
                labels.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
