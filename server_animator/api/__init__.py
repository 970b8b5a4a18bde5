"""The HTTP API (FastAPI): one router per resource, shared dependencies in deps.py."""
