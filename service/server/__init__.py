"""Running the app: the uvicorn server that drains on SIGTERM, the transport, and the worker
supervisor."""
