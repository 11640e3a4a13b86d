"""The Celery app workers load: ``celery -A godel.workers.app worker``.

Broker and result backend are the Redis Godel resolves from its settings;
importing the role modules registers their tasks.
"""

from __future__ import annotations

from godel import redis_url
from godel.broker import make_celery
from godel.config import get_settings

app = make_celery(redis_url.resolve(get_settings()))
app.conf.imports = (
    "godel.workers.coordinator",
    "godel.workers.worker",
    "godel.workers.reviewer",
    "godel.workers.control",
)
