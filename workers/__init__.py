"""Celery side of Godel: the app workers run and one task module per role."""
