"""ASGI middleware, one concern a file: request log, request metrics, API keys, body limit."""
