"""Init container: block until the database schema is at Godel's head revision.

The godel-migrate Job runs `godel db upgrade`; the API and workers start only after it
has, so no two pods run Alembic at once (both would try to create the same tables).
"""

import time

from godel.config import get_settings
from godel.storage.db import current_revision, head_revision

POLL_SECONDS = 3

url = get_settings().db_url
head = head_revision()
while True:
    try:
        current = current_revision(url)
        if current == head:
            print(f"schema at {head}", flush=True)
            break
        print(f"schema at {current or 'nothing'}, want {head}: waiting for the godel-migrate Job", flush=True)
    except Exception as exc:  # the database is not up yet, or not reachable yet
        print(f"waiting for the database: {exc}", flush=True)
    time.sleep(POLL_SECONDS)
