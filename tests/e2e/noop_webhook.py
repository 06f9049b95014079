"""A no-op admission webhook on keyguard's own uvicorn settings: it echoes the request's UID and allows.

What keyguard's admission overhead is judged against (tests/e2e/test_admission_overhead.py): the same Python, uvicorn,
uvloop, bounded httptools protocol and TLS, with no parsing beyond the UID and no decision. Given PATCH (a file
holding a base64 JSON patch: keyguard's own, captured by the test), it answers /mutate with it, so the API server's
cost of applying that patch is measured apart from keyguard's cost of deciding it.
    python tests/e2e/noop_webhook.py PORT CERT KEY [PATCH]
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

from webhook.commands.serve import UVICORN_SETTINGS

Message = MutableMapping[str, Any]
PATCH: dict[str, str] = {}


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
    response = {"uid": orjson.loads(body)["request"]["uid"], "allowed": True}
    if scope["path"] == "/mutate":
        response.update(PATCH)
    payload = orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    port, cert, key = sys.argv[1:4]
    if len(sys.argv) > 4:
        with open(sys.argv[4]) as patch:
            PATCH.update(patchType="JSONPatch", patch=patch.read().strip())
    uvicorn.run(
        app, host="127.0.0.1", port=int(port), ssl_certfile=cert, ssl_keyfile=key, lifespan="off", **UVICORN_SETTINGS
    )
