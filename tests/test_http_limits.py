"""The request head is bounded: bytes (request line + headers), header count, and the time to send it.

uvicorn's httptools protocol sets none of these (issue 17: a 32 MiB header was accepted and answered 200, and a
connection with half a head was still served after 15 s). Raw TLS sockets, because an HTTP client refuses to send
such requests.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.server_harness import RunningServer, running_server
from webhook.server import http_limits


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("limits")) as running:
        yield running


def _connect(server: RunningServer) -> ssl.SSLSocket:
    host, port = server.url.removeprefix("https://").split(":")
    raw = socket.create_connection((host, int(port)), timeout=10)
    return ssl.create_default_context(cafile=server.ca_file).wrap_socket(raw, server_hostname=host)


def _send_head(server: RunningServer, parts: Iterator[bytes]) -> tuple[int | None, float]:
    """Send the parts until the server answers or closes; the status it answered (None: closed without
    answering) and the seconds it took."""
    started = time.monotonic()
    answer = b""
    with _connect(server) as tls:
        for part in parts:
            try:
                tls.sendall(part)
                tls.setblocking(False)  # has the server answered already? (a TLS session ticket is not an answer)
                answer = tls.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                break
            finally:
                tls.settimeout(10)
            break
        try:
            while chunk := tls.recv(65536):
                answer += chunk
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, time.monotonic() - started


def _request_line() -> bytes:
    return b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"


def _huge_header() -> Iterator[bytes]:
    yield _request_line() + b"X-Padding: "
    for _ in range(32 * 16):  # 32 MiB in 64 KiB parts
        yield b"a" * 65536
    yield b"\r\n\r\n"


def _many_headers() -> Iterator[bytes]:
    yield _request_line() + b"".join(b"X-H%d: v\r\n" % n for n in range(http_limits.MAX_HEADERS + 1)) + b"\r\n"


def _long_request_line() -> Iterator[bytes]:
    yield b"POST /mutate?" + b"q" * (http_limits.MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _head_just_too_large_in_one_write() -> Iterator[bytes]:
    padding = b"X-Padding: " + b"b" * (http_limits.MAX_HEAD_BYTES - 100) + b"\r\n"
    yield _request_line() + padding + padding + b"Content-Length: 2\r\n\r\n{}"


@pytest.mark.parametrize(
    "parts",
    [_huge_header, _many_headers, _long_request_line, _head_just_too_large_in_one_write],
    ids=lambda f: f.__name__.strip("_"),
)
def test_an_oversized_head_is_refused_with_431_and_the_connection_closed(server: RunningServer, parts: object) -> None:
    status, seconds = _send_head(server, parts())  # type: ignore[operator]
    assert status == 431
    assert seconds < 5


def test_a_head_at_the_limit_is_served(server: RunningServer) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(http_limits.MAX_HEADERS - 10))
    head = _request_line() + headers + b"Content-Length: 2\r\n\r\n{}"
    status, _ = _send_head(server, iter([head]))
    assert status == 400  # read whole and answered: `{}` is not an AdmissionReview


def test_a_head_sent_too_slowly_is_cut_off(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_limits, "HEAD_TIMEOUT_SECONDS", 0.5)

    def slow() -> Iterator[bytes]:
        yield _request_line()
        time.sleep(3)  # the server must have answered and closed by now
        yield b"X-Late: v\r\n\r\n"

    status, seconds = _send_head(server, slow())
    assert status == 408
    assert seconds < 5


def test_an_idle_connection_that_never_starts_a_request_is_closed(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_limits, "HEAD_TIMEOUT_SECONDS", 0.5)
    with _connect(server) as tls:
        started = time.monotonic()
        assert tls.recv(65536) == b""  # closed without a word: there was no request to answer
        assert time.monotonic() - started < 5
