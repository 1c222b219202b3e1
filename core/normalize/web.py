"""Web servers: Apache/nginx access logs (common and combined) and their error logs."""

from __future__ import annotations

import logging
import re
from typing import Final

from core.normalize.fields import Fields, bounded_attributes
from core.normalize.severity import severity_from_http_status, severity_from_text
from core.normalize.timestamps import apache_time, iso_parts, named_date

logger = logging.getLogger(__name__)

# The inside of a quoted field, escapes allowed; written as runs of plain characters between escapes, which
# the regex engine goes through many times faster than one alternation per character.
_QUOTED: Final = r'[^"\\]*(?:\\.[^"\\]*)*'
_ACCESS: Final = re.compile(
    r"(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+(?: \S+)*?) \[(?P<time>[^\]]{10,40})\] "
    rf'"(?P<request>{_QUOTED})" (?P<status>\d{{3}}) (?P<bytes>\d+|-)'
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<agent>{_QUOTED})")?(?P<extra>.*)$',
    re.S,
)
_REQUEST: Final = re.compile(r"(?P<method>[A-Z]{3,10}) (?P<target>\S+)(?: (?P<protocol>HTTP/[\d.]+))?$")

_NGINX_ERROR: Final = re.compile(
    r"(?P<base>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] (?P<pid>\d+)#(?P<tid>\d+): "
    r"(?:\*(?P<cid>\d+) )?(?P<message>.*)$",
    re.S,
)
_NGINX_CONTEXT: Final = re.compile(
    r', (?P<key>client|server|request|upstream|host|referrer|subrequest): (?P<value>"[^"]*"|[^,]*)'
)

_APACHE_ERROR: Final = re.compile(
    r"\[(?:[A-Z][a-z]{2}) (?P<mon>[A-Z][a-z]{2}) (?P<day>\d{1,2}) (?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,6}))?"
    r" (?P<year>\d{4})\] \[(?:(?P<module>[^:\]\s]+):)?(?P<level>[a-z]+\d?)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?(?: \[client (?P<client>[^\]]+)\])? ?(?P<message>.*)$",
    re.S,
)


def parse_access(line: str, full: bool = True) -> Fields | None:
    """Apache/nginx common or combined access log; the status code sets the severity."""
    if " [" not in line or '"' not in line:
        return None
    match = _ACCESS.match(line)
    if match is None:
        return None
    client, _, user, time_text, request_text, status, size, referer, agent, extra = match.groups()
    moment = apache_time(time_text)
    if moment is None:
        return None
    if not full:
        return {"message": line[match.start(5) - 1 : match.end(7)]}
    attributes: list[tuple[str, str]] = [("client.address", client), ("http.status_code", status)]
    request = _REQUEST.match(request_text)
    if request is not None:
        attributes.append(("http.method", request[1]))
        attributes.append(("url.path", request[2]))
    if size != "-":
        attributes.append(("http.response.bytes", size))
    if user != "-":
        attributes.append(("user.name", user))
    if referer not in (None, "-", ""):
        attributes.append(("http.referer", referer))
    if agent not in (None, "-", ""):
        attributes.append(("user_agent", agent))
    extra = extra.strip()
    if extra:
        attributes.append(("extra", extra))
    return {
        "timestamp": moment,
        "severity": severity_from_http_status(int(status)),
        "severity_text": status,
        "message": line[match.start(5) - 1 : match.end(7)],
        "attributes": bounded_attributes(attributes),
    }


def parse_nginx_error(line: str, full: bool = True) -> Fields | None:
    """``2024/03/01 10:00:00 [error] 31#31: *1 connect() failed ..., client: 10.0.0.1, server: api``."""
    match = _NGINX_ERROR.match(line)
    if match is None:
        return None
    moment = iso_parts(match["base"], None)
    if moment is None:
        return None
    message = match["message"]
    context = message.find(", client: ")
    if context < 0:
        context = message.find(", server: ")
    if not full:
        return {"message": message[:context] if context >= 0 else message}
    level = match["level"]
    attributes: list[tuple[str, str]] = [("pid", match["pid"]), ("thread", match["tid"])]
    if match["cid"]:
        attributes.append(("connection", match["cid"]))
    if context >= 0:
        for item in _NGINX_CONTEXT.finditer(message, context):
            attributes.append((item["key"], item["value"].strip('"')))
        message = message[:context]
    return {
        "timestamp": moment,
        "severity": severity_from_text(level),
        "severity_text": level,
        "logger": "nginx",
        "message": message,
        "attributes": bounded_attributes(attributes),
    }


def parse_apache_error(line: str, full: bool = True) -> Fields | None:
    """``[Fri Mar 01 10:00:00.123456 2024] [proxy:error] [pid 42:tid 7] [client 10.0.0.1:5000] AH00940: ...``."""
    match = _APACHE_ERROR.match(line)
    if match is None:
        return None
    moment = named_date(match)
    if moment is None:
        return None
    if not full:
        return {"message": match["message"]}
    level = match["level"]
    attributes: list[tuple[str, str]] = []
    if match["pid"]:
        attributes.append(("pid", match["pid"]))
    if match["tid"]:
        attributes.append(("thread", match["tid"]))
    if match["client"]:
        attributes.append(("client.address", match["client"]))
    return {
        "timestamp": moment,
        "severity": severity_from_text(level.rstrip("0123456789")),
        "severity_text": level,
        "logger": match["module"],
        "message": match["message"],
        "attributes": bounded_attributes(attributes),
    }
