"""Godel: teams of AI coding agents run as a distributed Celery task queue."""

__version__ = "0.1.0"
