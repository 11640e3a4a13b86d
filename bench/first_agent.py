"""Time from typing `godel do` to the first agent starting, against a Celery baseline.

Both are measured in the same run on the same warm stack: the baseline is a
process that imports Godel's Celery app, enqueues a no-op task on the worker
queue and waits for its result — the floor any Celery-based CLI pays. The
figure to read is the ratio. Results go to bench/results/first_agent.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ROOT = Path(__file__).resolve().parent.parent
GODEL = str(Path(sys.executable).parent / "godel")
BASELINE = (
    "from godel import redis_url; from godel.broker import make_celery; from godel.config import get_settings;"
    "app = make_celery(redis_url.resolve(get_settings()));"
    "app.send_task('celery.accumulate', args=(1,), queue='godel.worker').get(timeout=60)"
)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=path, check=True)
    return path


def first_agent_seconds(env: dict[str, str], repo: Path) -> float:
    started = time.time()
    out = subprocess.run(
        [GODEL, "do", "fix the typo in the readme", "--runtime", "command", "--agent-cmd", "true", "--json", "--wait"],
        cwd=repo, env=env, capture_output=True, text=True, check=True,
    )
    job_id = json.loads(out.stdout)["job_id"]
    shown = subprocess.run([GODEL, "show", job_id, "--events", "--format", "json"], env=env, capture_output=True,
                           text=True, check=True)
    events = json.loads(shown.stdout)["events"]
    first = min(datetime.fromisoformat(e["ts"]).timestamp() for e in events if e["type"] == "agent.started")
    return first - started


def baseline_seconds(env: dict[str, str]) -> float:
    started = time.time()
    subprocess.run([sys.executable, "-c", BASELINE], env=env, check=True)
    return time.time() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
        env.update(GODEL_HOME=str(Path(tmp) / "home"), GODEL_WORKER_POOL="threads")
        if os.environ.get("GODEL_REDIS_URL"):
            env["GODEL_REDIS_URL"] = os.environ["GODEL_REDIS_URL"]
        repo = make_repo(Path(tmp) / "repo")
        cold_started = time.time()
        cold = first_agent_seconds(env, repo)  # includes starting the stack
        cold_total = time.time() - cold_started
        godel_runs, base_runs = [], []
        for _ in range(RUNS):
            base_runs.append(baseline_seconds(env))
            godel_runs.append(first_agent_seconds(env, repo))
        subprocess.run([GODEL, "down"], env=env, capture_output=True)
    result = {
        "runs": RUNS,
        "cold_first_agent_s": round(cold, 3),
        "cold_job_total_s": round(cold_total, 3),
        "warm_first_agent_s_median": round(statistics.median(godel_runs), 3),
        "baseline_celery_roundtrip_s_median": round(statistics.median(base_runs), 3),
        "ratio_warm_vs_baseline": round(statistics.median(godel_runs) / statistics.median(base_runs), 2),
        "warm_runs_s": [round(x, 3) for x in godel_runs],
        "baseline_runs_s": [round(x, 3) for x in base_runs],
    }
    out = ROOT / "bench" / "results" / "first_agent.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
