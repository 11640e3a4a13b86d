"""The Godel API server: REST under /api/v1, Socket.IO, Prometheus /metrics.

``create_app`` in ``godel.api.app`` builds it; ``godel serve`` runs it.
"""
