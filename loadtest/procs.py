"""Memory and CPU of the stack `godel up` started, sampled from /proc while a load runs.

The processes are those named by GODEL_HOME/run/*.pid (api, worker-N, redis)
plus all their descendants, because agents' git and pytest runs are children of
the worker and count against the same machine. RSS is summed per group, so
pages shared between a parent and its children are counted twice: the figure
is an upper bound, which is the safe side for sizing a machine.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> ppid for every process now alive."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # The command name (field 2) may hold spaces and parentheses; fields after the last ')' do not.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _rss_kb(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # exited, or a kernel thread without VmRSS


def _tree(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user/nice
    return total - idle, total


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process: utime+stime and cutime+cstime."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / ticks, (cutime + cstime) / ticks


def _roots(run_dir: Path) -> dict[str, int]:
    roots = {}
    for pidfile in sorted(run_dir.glob("*.pid")):
        try:
            roots[pidfile.stem] = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
    return roots


def group_rss_mb(run_dir: Path) -> dict[str, float]:
    """RSS in MB of each pid-file group (the process and its descendants), now."""
    parents = _parents()
    return {
        name: sum(_rss_kb(pid) for pid in _tree(root, parents)) / 1024
        for name, root in _roots(run_dir).items()
        if root in parents
    }


@dataclass
class Sampler:
    """Samples in a background thread between ``start()`` and ``stop()``."""

    run_dir: Path
    interval: float = 0.5
    peak_mb: dict[str, float] = field(default_factory=dict)
    peak_api_workers_mb: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ticks: tuple[int, int] = (0, 0)
    _cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    _reaped: float = 0.0
    _started: float = 0.0
    cpu_busy_pct: float = 0.0

    def start(self) -> Sampler:
        self._ticks = _cpu_ticks()
        self._cpu = {name: _cpu_seconds(pid) for name, pid in _roots(self.run_dir).items()}
        self._reaped = _reaped_children_cpu()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> dict[str, float]:
        sizes = group_rss_mb(self.run_dir)
        for name, mb in sizes.items():
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), mb)
        # The API and the workers at the same instant: what Godel itself needs, Redis aside.
        together = sum(mb for name, mb in sizes.items() if name == "api" or name.startswith("worker-"))
        self.peak_api_workers_mb = max(self.peak_api_workers_mb, together)
        self.samples += 1
        return sizes

    def stop(self) -> dict[str, object]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        busy0, total0 = self._ticks
        busy1, total1 = _cpu_ticks()
        self.cpu_busy_pct = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
        wall = time.monotonic() - self._started
        used = self._cpu_used()
        stack = sum(u["own"] + u["children"] for u in used.values())
        client = _reaped_children_cpu() - self._reaped  # k6, if it ended before stop()
        busy = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")  # all processes, all cores
        return {
            "cpu_seconds": used,
            "cpu_stack_s": round(stack, 1),
            "cpu_client_s": round(client, 1),
            # Neighbours on a shared machine (and agents' processes not reaped yet): when this is
            # large, the durations are pessimistic for a machine Godel has to itself.
            "cpu_outside_s": round(busy - stack - client, 1),
            "wall_s": round(wall, 1),
            "peak_rss_mb": {name: round(mb, 1) for name, mb in sorted(self.peak_mb.items())},
            "peak_rss_mb_api_workers": round(self.peak_api_workers_mb, 1),
            "cpu_busy_pct": round(self.cpu_busy_pct, 1),
            "cpu_busy_s": round(busy, 1),
            "samples": self.samples,
            "interval_s": self.interval,
        }

    def _cpu_used(self) -> dict[str, dict[str, float]]:
        """CPU seconds each group used while sampling: its own process (one Python interpreter, so
        at most one core's worth while the GIL is the limit) and the children it reaped (git, pytest).
        Children still running at stop are not in it yet."""
        used = {}
        for name, pid in _roots(self.run_dir).items():
            own0, kids0 = self._cpu.get(name, (0.0, 0.0))
            own1, kids1 = _cpu_seconds(pid)
            used[name] = {"own": round(own1 - own0, 1), "children": round(kids1 - kids0, 1)}
        return used


def _reaped_children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for (k6)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cgroup_cpu_max": _cgroup_cpu_max(),
        "mem_total_mb": round(mem_kb / 1024),
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }


def _cgroup_cpu_max() -> str | None:
    """A container's CPU quota ("max 100000" means none), which os.cpu_count() does not see."""
    path = Path("/sys/fs/cgroup/cpu.max")
    return path.read_text().strip() if path.is_file() else None
