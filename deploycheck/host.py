"""The Docker daemon this check needs, and the host state it must leave as it found it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
DAEMON_LOG = Path("/var/log/store-deploycheck-dockerd.log")


class Refused(Exception):
    """This host cannot run the check (no root, no dockerd, no container support)."""


def run(*args: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, its output captured as text."""
    return subprocess.run(args, check=check, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def daemon_answers() -> bool:
    """True when the docker CLI reaches a daemon."""
    if shutil.which("docker") is None:
        return False
    return run("docker", "info", "--format", "{{.ServerVersion}}", check=False).returncode == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages (without starting their services)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages, env=env)


class HostState:
    """Firewall rules, ip_forward and network links, saved before dockerd and put back after."""

    def __init__(self) -> None:
        self.ip_forward = IP_FORWARD.read_text()
        self.links = self._links()
        self.nft = shutil.which("nft")
        self.ruleset = run("nft", "list", "ruleset").stdout if self.nft else None
        self.saved = {
            tool: run(f"{tool}-save", check=False).stdout
            for tool in ("iptables", "ip6tables")
            if not self.nft and shutil.which(f"{tool}-save")
        }

    @staticmethod
    def _links() -> set[str]:
        out = run("ip", "-o", "link", "show", check=False).stdout
        return {
            line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line
        }

    def restore(self) -> None:
        """Put back the rules, ip_forward, and remove the bridges dockerd added."""
        if self.ruleset is not None:
            run("nft", "flush", "ruleset")
            run("nft", "-f", "-", input=self.ruleset)
        for tool, saved in self.saved.items():
            for table in ("filter", "nat", "mangle", "raw"):
                run(tool, "-t", table, "-F", check=False)
                run(tool, "-t", table, "-X", check=False)
            for chain in ("INPUT", "FORWARD", "OUTPUT"):
                run(tool, "-P", chain, "ACCEPT", check=False)
            run(f"{tool}-restore", input=saved, check=False)
        for link in self._links() - self.links:
            if link == "docker0" or link.startswith(("br-", "veth")):
                run("ip", "link", "delete", link, check=False)
        IP_FORWARD.write_text(self.ip_forward)


@contextlib.contextmanager
def docker_daemon(log: Callable[[str], None]) -> Iterator[None]:
    """A running dockerd: the one already there, or one started (and stopped) here."""
    if daemon_answers():
        log("dockerd: already running, used as it is")
        yield
        return
    if os.geteuid() != 0:
        raise Refused("dockerd is not running and starting it needs root")
    if shutil.which("dockerd") is None:
        log("dockerd: installing Debian's docker.io")
        try:
            apt_install("docker.io", "debootstrap", "iptables", "nftables")
        except subprocess.CalledProcessError as exc:
            raise Refused(f"cannot install docker.io: {exc.stderr.strip()[-200:]}") from exc
    state = HostState()
    daemon = subprocess.Popen(
        ["dockerd", "--host", "unix:///run/docker.sock"],
        stdout=DAEMON_LOG.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for _ in range(60):
            if daemon.poll() is not None or daemon_answers():
                break
            time.sleep(1)
        if not daemon_answers():
            tail = DAEMON_LOG.read_text(errors="replace").strip().splitlines()[-1:]
            raise Refused(f"dockerd cannot start here: {' '.join(tail)[-300:]}")
        log("dockerd: started")
        yield
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        state.restore()
        log("dockerd: stopped; firewall rules, ip_forward and links restored")
