"""The AsyncAPI document passes the AsyncAPI project's own parser (@asyncapi/parser on Node),
not only our code: no error and no warning."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from libs.runtime.asyncapi import asyncapi_document

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "Node.js 20 and npm are needed to run the AsyncAPI parser"
    if not (HERE / "node_modules" / "@asyncapi" / "parser").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            check=True,
            capture_output=True,
            timeout=500,
        )
    return node


def parse(node: str, document: dict[str, Any]) -> tuple[int, list[str]]:
    run = subprocess.run(
        [node, "validate.mjs"],
        input=json.dumps(document),
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not run.stderr, run.stderr
    return run.returncode, run.stdout.splitlines()


def test_the_document_passes_the_official_parser(node: str) -> None:
    code, diagnostics = parse(
        node, asyncapi_document(exchange="store.events", queue_prefix="store")
    )
    problems = [d for d in diagnostics if d.startswith(("error", "warning"))]
    assert code == 0 and problems == [], "\n".join(diagnostics)


def test_the_parser_refuses_a_broken_document(node: str) -> None:
    document = asyncapi_document(exchange="store.events", queue_prefix="store")
    operation = next(iter(document["operations"].values()))
    del operation["action"]
    code, diagnostics = parse(node, document)
    assert code == 1 and any(d.startswith("error") for d in diagnostics), diagnostics
