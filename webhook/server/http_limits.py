"""Bounds on the HTTP request head, which uvicorn's httptools protocol does not set.

The API server sends a request line and a few hundred bytes of headers. Without bounds a client could hold a
connection open forever with half a head (slowloris) or make the server buffer a 32 MiB header (httptools keeps a
header value until it is complete). uvicorn offers `h11_max_incomplete_event_size` only for its h11 protocol,
which parses in Python (slower on every review), and no head timeout for either. So keyguard keeps httptools and
adds the three bounds in a small subclass (which also frees a reset connection at once; see `connection_lost`):

- request line + headers at most `MAX_HEAD_BYTES`, and at most `MAX_HEADERS` headers: else 431, connection closed;
- the head must arrive within `HEAD_TIMEOUT_SECONDS` of the connection opening (or of the request's first byte on
  a kept-alive connection): else 408 and closed, or closed silently when no byte of a request came at all.

Memory per connection stays under `MAX_HEAD_BYTES` plus one read (uvloop reads at most 256 KiB at a time).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
HEAD_TIMEOUT_SECONDS = 10.0


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to stop parsing; httptools reports it as a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head (size, header count, time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_started = False
        self._head_read = 0  # raw bytes received since this head began (they may include a body's start)
        self._head_parsed = 0  # request line + header bytes the parser handed over
        self._header_count = 0
        self._refusal: tuple[int, bytes] | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)
        # uvicorn cancels its keep-alive timer on a clean close only: after a reset the timer kept this protocol,
        # its TLS state and its last request alive for the whole keep-alive period (120 s: serve.py).
        self._unset_keepalive_if_required()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_read += len(data)
        super().data_received(data)
        if self._in_head and self._head_read > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse(431, b"request header fields too large")  # one header still incomplete

    # parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._head_parsed = self._header_count = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_started, self._head_read = True, False, 0

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(*self._refusal)

    def _count(self, size: int, headers: int) -> None:
        self._head_parsed += size
        self._header_count += headers
        if self._head_parsed > MAX_HEAD_BYTES or self._header_count > MAX_HEADERS:
            self._refusal = (431, b"request header fields too large")
            raise _HeadTooLarge

    def _refuse(self, status: int, text: bytes) -> None:
        self._disarm_head_timer()
        if self.transport.is_closing():
            return
        body = text + b"\n"
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_started or self._head_read:
            self._refuse(408, b"request head not received in time")
        else:
            self.transport.close()
