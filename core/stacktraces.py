"""Exception types, top stack frames and crash/restart signatures, read from log messages."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Java/Kotlin/Scala style fully-qualified exception names, C#, and plain `FooError`/`FooException` words.
_JAVA_EXC = re.compile(
    r"(?<![\w.$])((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Failure|Fault))\b"
)
_PLAIN_EXC = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9_]*(?:Exception|Error))\b(?=:|\s|$)")
_PY_LAST = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault)):?(?: |$)")
_CAUSED_BY = re.compile(r"^\s*Caused by: ([\w.$]+)")
_JAVA_FRAME = re.compile(r"^\s*at ([\w.$<>]+)\(")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_GO_PANIC = re.compile(r"^panic: (.*)")
_GO_FUNC = re.compile(r"^([\w./*()-]+\.[\w*()]+)\(.*\)$")
_NODE_FRAME = re.compile(r"^\s*at (?:async )?([\w.$<>]+) \(")

_CRASH_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oom_killed", re.compile(r"OOMKilled|Out of memory: Killed process|oom-kill|oom_kill_process", re.I)),
    ("crash_loop", re.compile(r"CrashLoopBackOff|Back-off restarting failed container", re.I)),
    ("panic", re.compile(r"^panic: |fatal error: |SIGSEGV|segmentation fault|core dumped", re.I)),
    (
        "exit",
        re.compile(r"exited with (?:exit )?(?:code|status) [1-9]|terminated with exit code [1-9]", re.I),
    ),
    (
        "restart",
        re.compile(
            r"\b(?:Started \S+ in [\d.]+ seconds|Starting (?:application|server|service)\b|"
            r"Application startup complete|server started|Restarting container|container restarted|"
            r"Listening on (?:port|:?\d)|Booting worker)",
            re.I,
        ),
    ),
    (
        "shutdown",
        re.compile(r"\b(?:Shutting down|received signal (?:SIG)?TERM|SIGTERM|graceful shutdown)", re.I),
    ),
)


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    type: str
    frames: tuple[str, ...]

    @property
    def group_key(self) -> str:
        return self.type + ("@" + ">".join(self.frames) if self.frames else "")


def exception_of(message: str) -> ExceptionInfo | None:
    """The exception a (possibly multi-line) message reports, with up to three top frames of its own code.

    Prefers the root cause of a Java chain (the last ``Caused by:``) and the last line of a Python traceback.
    """
    if not _has_exception_hint(message):
        return None
    lines = message.split("\n")
    exc_type: str | None = None
    frames: list[str] = []
    if len(lines) > 1:
        exc_type, frames = _from_trace(lines)
    if exc_type is None:
        match = _JAVA_EXC.search(lines[0]) or _PLAIN_EXC.search(lines[0])
        if match:
            exc_type = match.group(1)
        else:
            panic = _GO_PANIC.match(lines[0])
            if panic:
                exc_type = "panic: " + _short(panic.group(1))
    if exc_type is None:
        return None
    return ExceptionInfo(type=exc_type, frames=tuple(frames[:3]))


def _has_exception_hint(message: str) -> bool:
    return (
        "Exception" in message
        or "Error" in message
        or "Traceback" in message
        or "panic:" in message
        or "Throwable" in message
    )


def _from_trace(lines: list[str]) -> tuple[str | None, list[str]]:
    exc_type: str | None = None
    frames: list[str] = []
    caused_frames: list[str] = []
    in_caused = False
    if lines[0].lstrip().startswith("Traceback") or any(
        ln.startswith("Traceback (most recent") for ln in lines
    ):
        # Python: frames innermost last; the exception is the last non-indented line.
        for line in reversed(lines):
            if line and not line[0].isspace():
                match = _PY_LAST.match(line)
                if match:
                    exc_type = match.group(1)
                    break
        py_frames = [f"{m.group(2)}" for m in (_PY_FRAME.match(ln) for ln in lines) if m]
        frames = list(reversed(py_frames))
        return exc_type, frames
    for line in lines:
        caused = _CAUSED_BY.match(line)
        if caused:
            exc_type = caused.group(1).rstrip(":")
            in_caused = True
            caused_frames = []
            continue
        frame = _JAVA_FRAME.match(line) or _NODE_FRAME.match(line)
        if frame:
            (caused_frames if in_caused else frames).append(frame.group(1))
            continue
        go_func = _GO_FUNC.match(line.strip())
        if go_func and not in_caused and not line.startswith("goroutine"):
            frames.append(go_func.group(1))
    if exc_type is None:
        first = lines[0]
        match = _JAVA_EXC.search(first) or _PLAIN_EXC.search(first)
        if not match and len(lines) > 1:
            match = _JAVA_EXC.search(lines[1]) or _PLAIN_EXC.search(lines[1])
        if match:
            exc_type = match.group(1)
        else:
            panic = _GO_PANIC.match(first)
            if panic:
                exc_type = "panic: " + _short(panic.group(1))
    if in_caused and caused_frames:
        frames = caused_frames
    return exc_type, frames


def _short(text: str) -> str:
    text = text.strip()
    # Keep the stable head of a panic message ("runtime error: invalid memory address ...").
    cut = re.split(r"[\[(0-9]", text, maxsplit=1)[0].strip()
    return (cut or text)[:80]


def crash_signature(text: str) -> str | None:
    """'oom_killed', 'crash_loop', 'panic', 'exit', 'restart' or 'shutdown' when the text shows one."""
    for name, pattern in _CRASH_PATTERNS:
        if pattern.search(text):
            return name
    return None
