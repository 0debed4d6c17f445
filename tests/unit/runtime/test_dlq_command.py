"""`store dlq` refuses what it cannot do, before touching anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize("command", ["list", "replay"])
def test_dlq_refuses_the_embedded_bus(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_BROKER_URL", "memory://")
    result = CliRunner().invoke(app, ["dlq", command, "orders"])
    assert result.exit_code == 2
    assert "memory" in result.output


def test_dlq_refuses_an_unknown_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE_BROKER_URL", "amqp://guest:guest@127.0.0.1:9/")
    result = CliRunner().invoke(app, ["dlq", "list", "gateway"])
    assert result.exit_code == 2
    assert "unknown service" in result.output
