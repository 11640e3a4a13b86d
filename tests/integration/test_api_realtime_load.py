"""Socket.IO in threading mode under load: many clients, many jobs, two API processes on one Redis."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.integration.test_api_realtime import Listener, finished, stored_ids, submit
from tests.integration.test_api_serve import ApiServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("celery_worker")]

CLIENTS = 30
"""Socket.IO clients at once: each job followed by several, plus overview watchers on both servers."""
JOBS = 6


@pytest.fixture(scope="module")
def servers(godel_env: dict[str, str]) -> Iterator[tuple[ApiServer, ApiServer]]:
    with running_server(godel_env) as first, running_server(godel_env) as second:
        yield first, second


def test_every_client_gets_every_event_in_order(
    servers: tuple[ApiServer, ApiServer], tmp_path: Path, fake_agent: str
) -> None:
    first, second = servers
    overviews = [Listener(server, "/overview", "event") for server in (first, second) for _ in range(3)]
    jobs = [submit(first, make_repo(tmp_path / f"repo{i}"), fake_agent) for i in range(JOBS)]
    followers = []
    for index in range(CLIENTS - len(overviews)):
        server = (first, second)[index % 2]  # half the clients on the process that did not take the job
        listener = Listener(server, "/jobs", "event")
        job_id = jobs[index % JOBS]
        assert listener.call("subscribe", {"job_id": job_id, "last_id": "0"})["ok"]
        followers.append((listener, job_id))
    try:
        for listener, job_id in followers:
            events = listener.wait_for("event", finished(job_id), timeout=120)
            assert [e["id"] for e in events] == stored_ids(first, job_id), "lost, doubled or reordered"
        for overview in overviews:
            for job_id in jobs:
                events = overview.wait_for("event", finished(job_id), timeout=60)
                mine = [(e["type"], e["agent"]) for e in events if e["job_id"] == job_id]
                stored = first.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
                assert mine == [(e["type"], e["agent"]) for e in stored]
    finally:
        # Each disconnect waits for its client's reader thread; thirty in a row take a while.
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            list(pool.map(Listener.close, [*overviews, *(f for f, _ in followers)]))
