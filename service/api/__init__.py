"""The HTTP API: one module per resource, their schemas and request dependencies, and the
registry of routers (protected by API keys unless declared open)."""
