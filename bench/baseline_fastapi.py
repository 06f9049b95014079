"""No-op baseline 2: an ordinary FastAPI POST route that takes the AdmissionReview and answers a fixed one.

What a webhook written the usual FastAPI way costs before doing any work: routing, the Request object, body
parsing into a `dict` by FastAPI (stdlib json plus validation of the declared type), and a Response. keyguard's
admission path bypasses all of this (webhook/server/admission_asgi.py); this shows what that buys. Run by
bench/run.py: `python bench/baseline_fastapi.py --port P --tls-cert F --tls-key F [--response FILE]`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, Response
from serving import fixed_response, parse_args, serve


def make_app(payload: bytes) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/mutate")
    async def mutate(review: dict[str, Any] = Body(...)) -> Response:  # noqa: B008
        del review  # a no-op: the body is parsed, then ignored
        return Response(content=payload, media_type="application/json")

    return app


def main() -> None:
    args = parse_args(__doc__ or "")
    serve(make_app(fixed_response(args)), args)


if __name__ == "__main__":
    main()
