"""One HTTP/1.x request head, read under hard limits before anything else looks at it.

A scraper sends a request line and a handful of short headers. Anything much bigger is a
mistake or an attack, so the line length, the number of headers and the head's total size are
capped here, before authentication, and the connection's reader never buffers more than about
two lines (its StreamReader limit is MAX_LINE_BYTES). Whoever calls `read_head` puts a time
limit around it, so a client trickling bytes cannot hold a connection for long.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from http import HTTPStatus

MAX_LINE_BYTES = 8 * 1024
MAX_HEADERS = 64
MAX_HEAD_BYTES = 16 * 1024  # request line and headers together
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SUPPORTED_VERSIONS = ("HTTP/1.0", "HTTP/1.1")


class BadRequest(Exception):
    """A head we refuse to read further: the status to answer with, and why (one line)."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"
    headers: dict[str, str]  # lower-case names; repeated fields joined with ", " (RFC 9110 5.3)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless asked to close; HTTP/1.0 only when asked to keep it."""
        options = {o.strip().lower() for o in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.1":
            return "close" not in options
        return "keep-alive" in options

    @property
    def has_body(self) -> bool:
        """A body we will not read: the connection cannot carry another request after it."""
        length = (self.header("content-length") or "0").strip()
        return self.header("transfer-encoding") is not None or length != "0"


async def _line(reader: asyncio.StreamReader, too_long: HTTPStatus, what: str) -> bytes:
    try:
        return await reader.readline()
    except ValueError:  # over the reader's limit: StreamReader drops what it buffered
        raise BadRequest(too_long, f"{what} longer than {MAX_LINE_BYTES} bytes") from None


async def read_request_line(reader: asyncio.StreamReader) -> tuple[bytes, int] | None:
    """The request line and the bytes it took (blank lines before it included); None at end of input."""
    used = 0
    while True:
        line = await _line(reader, HTTPStatus.REQUEST_URI_TOO_LONG, "request line")
        if not line.endswith(b"\n"):
            return None  # the client closed (possibly mid-line): nobody to answer
        used += len(line)
        if used > MAX_HEAD_BYTES:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "too many blank lines before the request")
        if line.strip(b"\r\n"):
            return line, used
        # RFC 9112 2.2: a server should ignore blank lines received before the request line.


async def read_headers(reader: asyncio.StreamReader, request_line: bytes, used: int) -> RequestHead | None:
    """The rest of the head after `request_line`; None when the client closed before its end."""
    method, target, version = _parse_request_line(request_line)
    headers: dict[str, str] = {}
    count = 0
    while True:
        line = await _line(reader, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header line")
        if not line.endswith(b"\n"):
            return None
        used += len(line)
        if used > MAX_HEAD_BYTES:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request head over {MAX_HEAD_BYTES} bytes")
        field = line.rstrip(b"\r\n")
        if not field:
            return RequestHead(method, target, version, headers)
        count += 1
        if count > MAX_HEADERS:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADERS} header fields")
        name, value = _parse_field(field)
        headers[name] = f"{headers[name]}, {value}" if name in headers else value


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    parts = line.rstrip(b"\r\n").decode("latin-1").split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"bad HTTP version {version[:20]!r}")
    if version not in _SUPPORTED_VERSIONS:
        raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} is not supported (use HTTP/1.1)")
    return method, target, version


def _parse_field(field: bytes) -> tuple[str, str]:
    name, sep, value = field.decode("latin-1").partition(":")
    if not sep or not _TOKEN.fullmatch(name):  # also refuses obs-fold continuation lines (RFC 9112 5.2)
        raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed header field")
    return name.lower(), value.strip(" \t")
