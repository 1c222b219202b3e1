"""Log normalization: any common log shape in, :class:`~core.models.LogRecord` out.

``read_logs(source, *, name=None, fmt=None, issues=None)`` streams one source (a path, ``"-"`` for stdin,
raw bytes, a list of lines, or an open binary/text file; gzip is recognised by its magic bytes). With
``fmt`` None or ``"auto"`` the format is detected once per source from its first lines; lines that do not
fit it are parsed by shape one at a time, so mixed output (kubectl logs mixing JSON and text) still
works. Multi-line records (stack traces, tracebacks, Go panics, indented continuations) are joined.

``read_messages`` (same arguments) reads the same way but gives only ``(message, line, lines)`` per record,
skipping the conversion of the other fields, for template mining.

Problems with the input never stop the stream: they are appended to ``issues`` as ParseIssues naming
the source and 1-based line. Year-less timestamps (RFC 3164 syslog, glog) take the current UTC year, or
the one set in :data:`core.normalize.timestamps.ASSUMED_YEAR`.
"""

from __future__ import annotations

from core.normalize.detect import detect_format
from core.normalize.formats import LOG_FORMATS
from core.normalize.kubernetes import workload_from_pod
from core.normalize.reader import read_logs, read_messages
from core.normalize.timestamps import ASSUMED_YEAR

__all__ = ["ASSUMED_YEAR", "LOG_FORMATS", "detect_format", "read_logs", "read_messages", "workload_from_pod"]
