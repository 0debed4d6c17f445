"""`libs/contracts` is installable on its own: another team can `pip install` the event models
without the store, and they import nothing of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.test_boundaries import imported_modules

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "libs" / "contracts"

CHECK = """
import sys
try:
    import libs.runtime
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the store itself is importable here: not a fresh environment")
from libs.contracts.envelope import EVENTS, Envelope
from libs.contracts import events, cart, catalog, orders, payments, store
for event_type, model in sorted(EVENTS.items()):
    example = model.model_json_schema()["examples"][0]
    payload = model.model_validate(example)
    envelope = Envelope.from_bytes(Envelope.wrap(payload, producer="test").to_bytes())
    assert envelope.parse_payload() == payload
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("services", "gateway", "fastapi", "sqlalchemy") or m.startswith("libs.runtime"))
assert not leaked, leaked
print(len(EVENTS), "events")
"""


def test_the_contracts_import_nothing_of_the_store() -> None:
    offenders = [
        f"{path.name} imports {module}"
        for path in sorted(CONTRACTS.glob("*.py"))
        for module in imported_modules(path)
        if module.split(".")[0] in ("services", "gateway", "bench", "tests")
        or (module.startswith("libs.") and not module.startswith("libs.contracts"))
    ]
    assert offenders == []


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_the_event_models(tmp_path: Path) -> None:
    source = tmp_path / "store-contracts"
    shutil.copytree(CONTRACTS, source, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    run = subprocess.run(
        [str(python), "-c", CHECK], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    from libs.contracts import events  # noqa: F401  (registers every event)
    from libs.contracts.envelope import EVENTS

    assert run.stdout.strip() == f"{len(EVENTS)} events"
