"""What every view needs, built once per app and attached to it.

Views call ``services()`` instead of building contexts per request, so one
server process shares one database engine, one Redis pool and one metrics
registry, and tests can build several apps in one process without globals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask import current_app

from godel.context import Context
from godel.monitor import Monitor
from godel.telemetry import Telemetry

from .auth import Guard

EXTENSION = "godel"


@dataclass
class Services:
    ctx: Context
    guard: Guard
    telemetry: Telemetry
    monitor: Monitor
    """Celery workers, tasks and queues as seen from worker events."""
    started: float = field(default_factory=time.monotonic)

    @property
    def auth(self) -> bool:
        return self.guard.enabled


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found
