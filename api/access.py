"""Who may bind where without keys: auth may be off only on a loopback address."""

from __future__ import annotations

from godel.config import Settings
from godel.errors import ValidationError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def auth_enabled(settings: Settings, host: str | None = None) -> bool:
    """Whether requests need a key; refuses auth off on an address others can reach."""
    host = host or settings.api_host
    if settings.auth is None:
        return host not in LOOPBACK
    if not settings.auth and host not in LOOPBACK:
        raise ValidationError(
            f"GODEL_AUTH=off is only allowed when binding 127.0.0.1 or localhost, not {host}; "
            "create a key with `godel keys create --scope admin` and keep auth on",
            field="auth",
        )
    return settings.auth
