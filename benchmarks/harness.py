"""Shared helpers of the benchmark scripts: Markdown output, the machine, and isolated timed cases.

Each case runs in a fresh 'spawn' child process, so its time and peak memory are its own and a
case that runs too long can be killed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- formatting


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def secs(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def emit(text: str = "") -> None:
    print(text, flush=True)


def load_average() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1 / 5 / 15 min)"
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(packages: Sequence[str]) -> list[tuple[str, str]]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = [
        ("CPU", cpu_model()),
        ("cores", f"{os.cpu_count()} ({usable} usable)"),
        ("platform", platform.platform()),
        ("python", platform.python_version()),
    ]
    for package in packages:
        try:
            rows.append((package, version(package)))
        except PackageNotFoundError:
            rows.append((package, "not installed"))
    rows.append(("load average at start", load_average()))
    return rows


# --------------------------------------------------------------------------- isolated cases


@dataclass(frozen=True)
class Outcome:
    """What one case in a fresh child process gave: seconds, peak RSS (MB) and a payload."""

    status: str  # "ok", "timed out" or an error message
    seconds: float = float("nan")
    peak_mb: float = float("nan")
    payload: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


Case = Callable[..., tuple[float, Any]]


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM, which exec resets.

    Not ``ru_maxrss``: Linux carries it across fork and exec, so a spawned child starts with the parent's RSS
    at fork time (a parent holding a large table and SDV would show its own size).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _child(conn: Connection, case: Case, kwargs: dict[str, Any]) -> None:
    try:
        seconds, payload = case(**kwargs)
        peak_mb = peak_rss_mb()
        conn.send(("ok", seconds, peak_mb, payload))
    except Exception as exc:  # reported in the table, not raised
        conn.send((f"error: {type(exc).__name__}: {exc}", float("nan"), float("nan"), None))
    finally:
        conn.close()


def measure(case: Case, timeout: float, **kwargs: Any) -> Outcome:
    """Run ``case(**kwargs)`` in a fresh 'spawn' child; past ``timeout`` seconds (start-up included) it is killed."""
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, case, kwargs))
    proc.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            proc.terminate()
            return Outcome("timed out")
        status, seconds, peak_mb, payload = receiver.recv()
        return Outcome(status, seconds, peak_mb, payload)
    except EOFError:
        proc.join()
        return Outcome(f"crashed (exit code {proc.exitcode})")
    finally:
        proc.join()
        receiver.close()


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """The best of `repeats` timings of `fn()`, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
