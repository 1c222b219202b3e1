from hypothesis import given
from hypothesis import strategies as st

from core.stacktraces import crash_signature, exception_of

JAVA = """Request processing failed; nested exception is org.springframework.dao.DataAccessResourceFailureException: could not get connection
\tat org.springframework.orm.jpa.vendor.HibernateJpaDialect.convertHibernateAccessException(HibernateJpaDialect.java:255)
\tat com.acme.payments.ChargeService.charge(ChargeService.java:88)
Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.
\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)
\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:197)
\t... 42 more"""

PYTHON = """Unhandled error while handling /orders
Traceback (most recent call last):
  File "/app/orders/api.py", line 41, in create_order
    row = await db.fetchrow(SQL, order.id)
  File "/app/orders/db.py", line 12, in fetchrow
    return await self.pool.fetchrow(query, *args)
asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already"""

GO = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x4a2f1c]

goroutine 57 [running]:
main.(*Handler).ServeHTTP(0x0, {0x7f1c2a, 0xc0001a8000}, 0xc000190100)
\t/src/cmd/api/handler.go:88 +0x3c
net/http.serverHandler.ServeHTTP({0xc000120000}, {0x7f1c2a, 0xc0001a8000}, 0xc000190100)
\t/usr/local/go/src/net/http/server.go:2938 +0x8e"""


def test_java_root_cause_is_the_last_caused_by_with_its_frames() -> None:
    info = exception_of(JAVA)
    assert info is not None
    assert info.type == "java.sql.SQLTransientConnectionException"
    assert info.frames[0] == "com.zaxxer.hikari.pool.HikariPool.createTimeoutException"


def test_python_exception_is_the_last_line_and_frames_innermost_first() -> None:
    info = exception_of(PYTHON)
    assert info is not None
    assert info.type == "asyncpg.exceptions.TooManyConnectionsError"
    assert info.frames == ("fetchrow", "create_order")


def test_go_panic_keeps_the_stable_head_of_the_message() -> None:
    info = exception_of(GO)
    assert info is not None
    assert info.type == "panic: runtime error: invalid memory address or nil pointer dereference"
    assert info.frames[0] == "main.(*Handler).ServeHTTP"


def test_single_line_exception_names() -> None:
    info = exception_of("Failed to call inventory: java.net.SocketTimeoutException: Read timed out")
    assert info is not None and info.type == "java.net.SocketTimeoutException"
    info = exception_of("KeyError: 'customer_id'")
    assert info is not None and info.type == "KeyError"
    assert exception_of("GET /healthz 200 3ms") is None


def test_group_key_separates_same_type_at_different_frames() -> None:
    a = exception_of(JAVA)
    b = exception_of(JAVA.replace("createTimeoutException", "borrow"))
    assert a is not None and b is not None
    assert a.type == b.type and a.group_key != b.group_key


def test_crash_signatures() -> None:
    assert crash_signature("Last State: Terminated Reason: OOMKilled Exit Code: 137") == "oom_killed"
    assert (
        crash_signature('Back-off restarting failed container api in pod "api-7d9f8b6c5-x2x9k"')
        == "crash_loop"
    )
    assert crash_signature("Started PaymentsApplication in 7.412 seconds (JVM running for 8.1)") == "restart"
    assert crash_signature("GET /api/orders 200 12ms") is None


@given(st.text(max_size=400))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    exception_of(text)
    exception_of("Traceback (most recent call last):\n" + text)
    crash_signature(text)
