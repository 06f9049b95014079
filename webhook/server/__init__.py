"""The HTTPS admission service: a lean ASGI admission path hosted by a FastAPI app."""

from webhook.native import package_path

__path__ = package_path(__name__, __path__)  # the mypyc build of the admission path, when fresh (webhook.native)
