"""No-op baseline 1: a raw ASGI callable that reads the body and answers a fixed AdmissionReview.

This is the limit of the stack (uvicorn + uvloop + httptools + TLS on one core): keyguard's admission path can
only approach it, so keyguard's throughput is reported as a ratio to this. Run by bench/run.py:
`python bench/baseline_raw.py --port P --tls-cert F --tls-key F [--response FILE]`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving import fixed_response, parse_args, serve

Message = MutableMapping[str, Any]
HEADERS = [(b"content-type", b"application/json")]


def make_app(payload: bytes) -> Callable[[Message, Callable[[], Awaitable[Message]], Any], Awaitable[None]]:
    """The ASGI app: drain the request body, send `payload` (200, application/json); handle lifespan."""

    async def app(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    args = parse_args(__doc__ or "")
    serve(make_app(fixed_response(args)), args)


if __name__ == "__main__":
    main()
