"""Drive one workload with wrk and read back what its Lua `done` printed."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).parent / "lua"


@dataclass(frozen=True)
class Measure:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: str = ""
    loadgen_cpu: float | None = None  # the load generator's CPU use, in cores

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed (Debian: apt-get install wrk)")
    return path


def run_wrk(
    url: str,
    script: str,
    *args: str,
    duration_s: float,
    connections: int = 32,
    threads: int = 1,
    timeout_s: float = 5.0,
) -> Measure:
    """`wrk` with one of bench/lua/*.lua for `duration_s`; errors = socket errors + non-2xx/3xx."""
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    if args:
        command += ["--", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + timeout_s + 30,
        env={**os.environ, "BENCH_LUA_DIR": str(LUA_DIR)},
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk printed no result (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    kinds = ("connect", "read", "write", "timeout", "status")
    errors = sum(int(data[k]) for k in kinds)
    detail = ", ".join(f"{data[k]} {k if k != 'status' else 'non-2xx'}" for k in kinds if data[k])
    return Measure(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=int(data["p50"]) / 1000,
        p99_ms=int(data["p99"]) / 1000,
        errors=errors,
        error_detail=detail,
        loadgen_cpu=cpu / wall if wall else None,
    )
