"""Property-based requests against the published OpenAPI document: whatever a client sends to
any endpoint, the answer is never a server error (5xx)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import token_for
from tests.support.cluster import RunningStore

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_no_request_makes_the_store_fail(store: RunningStore, who: str) -> None:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{store.base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "15",
        "--seed",
        "20261128",
    ]
    if who == "user":
        command += ["-H", f"Authorization: Bearer {token_for(store, 'fuzzer', orgs=['acme'])}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
