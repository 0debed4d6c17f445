"""Sampling profiles of the services while a workload runs (`python -m bench --profile DIR`):
py-spy records each service process for the length of the measured run, and a summary says
how busy each one was and which of its frames hold the time."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Leaf frames of a thread or loop that is waiting, not working.
IDLE = (
    "Runner.run (asyncio/runners.py",
    "Condition.wait (threading.py",
    "select (selectors.py",
    "EpollSelector.select",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
)
RATE = 100


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    sibling = Path(sys.executable).with_name("py-spy")  # installed in the venv
    return str(sibling) if sibling.exists() else None


@dataclass
class Recording:
    service: str
    path: Path
    process: subprocess.Popen[bytes]


def start(pids: dict[str, int], *, seconds: float, directory: Path, label: str) -> list[Recording]:
    """One py-spy per service for `seconds`; nothing when py-spy is missing."""
    binary = py_spy()
    if binary is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
    recordings = []
    for service, pid in pids.items():
        path = directory / f"{slug}.{service}.txt"
        command = [binary, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r"]
        command += [str(RATE), "-f", "raw", "--nonblocking", "-o", str(path)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        recordings.append(Recording(service, path, process))
    return recordings


def finish(recordings: list[Recording], *, seconds: float, label: str) -> str:
    """Wait for the recordings; a Markdown summary of where each service's time went."""
    lines: list[str] = []
    for recording in recordings:
        try:
            recording.process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            recording.process.kill()
        if recording.path.exists():
            lines.append(summarize(recording.service, recording.path, seconds))
    if not lines:
        return ""
    return f"#### {label}\n\n" + "\n".join(lines) + "\n"


def _function(frame: str) -> str:
    """`name (path:line)` without the line: samples of one function add up."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _ours(frame: str) -> bool:
    return frame.partition(" (")[2].startswith(("gateway/", "libs/", "services/"))


def summarize(service: str, path: Path, seconds: float, top: int = 6) -> str:
    """Busy share, and for each stack the deepest frame of ours with the library call it is
    in at that moment: "where our code spends its time, and on what"."""
    busy = 0
    spots: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            continue
        n = int(count)
        busy += n
        leaves[_function(frames[-1])] += n
        deepest = max((i for i, f in enumerate(frames) if _ours(f)), default=None)
        if deepest is None:
            spots["(outside our code) " + _function(frames[min(len(frames) - 1, 3)])] += n
            continue
        below = frames[deepest + 1] if deepest + 1 < len(frames) else ""
        spot = frames[deepest] + (f" → {_function(below)}" if below else "")
        spots[spot] += n
    possible = seconds * RATE
    head = f"- **{service}**: busy {busy / possible:.0%} of one core"
    if not busy:
        return head
    parts = [head]
    parts += [f"  - {n / busy:.0%} {spot}" for spot, n in spots.most_common(top)]
    parts.append(
        "  - hottest leaves: " + "; ".join(f"{n / busy:.0%} {f}" for f, n in leaves.most_common(4))
    )
    return "\n".join(parts)
