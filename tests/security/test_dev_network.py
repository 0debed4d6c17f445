"""`store dev` serves forgeable identities, so it listens on the network only when told to
(finding 11)."""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing
from typer.testing import CliRunner

from cli.main import app


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.delenv("STORE_BROKER_URL", raising=False)
    # `store dev` sets the origin for its app when none is set: set one, so it is put back.
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8000")
    # The process's logging stays as it is: the command's own setup would bind it to the
    # runner's captured output, which is closed after the call.
    monkeypatch.setattr("cli.main._configure_logging", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "shop.local"])
def test_a_network_address_is_refused_without_the_switch(
    served: list[dict[str, Any]], host: str
) -> None:
    result = CliRunner().invoke(app, ["dev", "--host", host])
    assert result.exit_code == 2, result.output
    assert "--allow-network" in result.output
    assert served == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_is_served_as_before(served: list[dict[str, Any]], host: str) -> None:
    result = CliRunner().invoke(app, ["dev", "--host", host, "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert [(call["host"], call["port"]) for call in served] == [(host, 8123)]


def test_the_switch_serves_the_network_and_says_so(served: list[dict[str, Any]]) -> None:
    with structlog.testing.capture_logs() as logs:
        result = CliRunner().invoke(app, ["dev", "--host", "0.0.0.0", "--allow-network"])
    assert result.exit_code == 0, result.output
    assert [call["host"] for call in served] == ["0.0.0.0"]
    assert [entry["host"] for entry in logs if entry["event"] == "dev.network_exposed"] == [
        "0.0.0.0"
    ]
