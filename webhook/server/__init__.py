"""The HTTPS admission service: a lean ASGI admission path hosted by a FastAPI app."""
