"""Load-test results as a short markdown table (valid on a console too).

    python loadtest/report.py                       # every loadtest/results/*.json
    python loadtest/report.py results/teams-50-*.json

One row per result, then what went wrong in any of them: thresholds crossed,
jobs that did not succeed, and signs of trouble in the stack's logs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = [
    "teams",
    "jobs ok",
    "alone p50 s",
    "load p50 s",
    "load p95 s",
    "ratio",
    "submit p95 ms",
    "poll p95 ms",
    "peak RSS api+workers MB",
    "CPU busy %",
    "CPU s/job",
    "CPUs",
    "held",
]


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return f"{value:g}" if isinstance(value, float) else str(value)


def row(r: dict[str, Any]) -> list[str]:
    load = r.get("load", {})
    done = (load.get("jobs_succeeded") or 0) + (load.get("jobs_failed") or 0)
    config = r.get("config", {})
    teams = ", ".join(
        [str(r["teams"])]
        + ([f"for {r['duration']}"] if r.get("duration") else [])
        + ([f"ramp {config['ramp_s']:g}s"] if config.get("ramp_s") else [])
        + ([config["database"]] if config.get("database", "sqlite") != "sqlite" else [])
    )
    return [
        _cell(v)
        for v in (
            teams,
            f"{load.get('jobs_succeeded', 0)}/{done}" if load else None,
            _get(r, "baseline", "job_duration_s", "p50"),
            _get(load, "job_duration_s", "p50"),
            _get(load, "job_duration_s", "p95"),
            r.get("ratio"),
            _get(load, "submit_latency_ms", "p95"),
            _get(load, "poll_latency_ms", "p95"),
            _get(r, "resources", "peak_rss_mb_api_workers"),
            _get(r, "resources", "cpu_busy_pct"),
            _get(r, "resources", "cpu_s_per_job"),
            _get(r, "machine", "cpus_usable"),
            r.get("passed", False),
        )
    ]


def problems(r: dict[str, Any]) -> list[str]:
    lines = [f"threshold crossed: {t}" for t in _get(r, "load", "thresholds_crossed") or []]
    jobs = _get(r, "server", "unsuccessful_jobs") or []
    lines += [f"job {j['job_id']} {j['status']}: {(j['error'] or '')[:200]}" for j in jobs[:5]]
    if len(jobs) > 5:
        lines.append(f"... and {len(jobs) - 5} more jobs that did not succeed")
    for sign, found in (r.get("log_findings") or {}).items():
        lines.append(f"log: {found['count']} x {sign}, e.g. {found['examples'][0]}")
    outside, busy = _get(r, "resources", "cpu_outside_s"), _get(r, "resources", "cpu_busy_s")
    if outside and busy and outside > 0.1 * busy:
        lines.append(
            f"shared machine: {outside:g} of {busy:g} busy CPU-s went to processes outside Godel and k6, "
            "so the durations are pessimistic"
        )
    if _get(r, "baseline", "jobs_failed"):
        lines.append("a job of the lone team (the baseline) failed, so the ratio means nothing")
    if "load" not in r:
        lines.append("the load run did not finish; see the logs next to this report")
    return lines


def render(results: list[dict[str, Any]]) -> str:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(row(r)) + " |" for r in results]
    for r in results:
        if found := problems(r):
            out += ["", f"{r['name']}:"] + [f"  - {line}" for line in found]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(RESULTS.glob("teams-*.json"))
    paths = [p for p in paths if not p.name.endswith("-summary.json")]  # k6's own exports sit alongside
    if not paths:
        print(f"no results: run `python loadtest/run.py --teams 10` first (looked in {RESULTS})", file=sys.stderr)
        return 1
    print(render([json.loads(p.read_text()) for p in paths]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
