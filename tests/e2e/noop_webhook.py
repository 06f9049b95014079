"""A no-op admission webhook on keyguard's own uvicorn settings: it echoes the request's UID and allows.

What keyguard's admission overhead is judged against (tests/e2e/test_admission_overhead.py): the same Python, uvicorn,
uvloop, bounded httptools protocol and TLS, with no parsing beyond the UID and no decision.
    python tests/e2e/noop_webhook.py PORT CERT KEY
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

from webhook.commands.serve import UVICORN_SETTINGS

Message = MutableMapping[str, Any]


async def app(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    uid = orjson.loads(body)["request"]["uid"]
    payload = orjson.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": True}}
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    port, cert, key = sys.argv[1:4]
    uvicorn.run(
        app, host="127.0.0.1", port=int(port), ssl_certfile=cert, ssl_keyfile=key, lifespan="off", **UVICORN_SETTINGS
    )
