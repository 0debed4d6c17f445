"""docs/events.md is generated from the contracts: it shows every event with its example and
is regenerated (`python -m cli.eventsdoc > docs/events.md`) whenever a contract changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli import eventsdoc
from libs.contracts.envelope import EVENTS, Envelope

PAGE = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_page_is_current() -> None:
    assert PAGE.read_text() == eventsdoc.render(), (
        "docs/events.md is out of date: python -m cli.eventsdoc > docs/events.md"
    )


def test_every_event_is_shown_with_an_example_that_parses() -> None:
    page = PAGE.read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", page, re.S)]
    shown = {}
    for body in examples:
        envelope = Envelope.model_validate(body)
        shown[envelope.type] = envelope.parse_payload()
    assert set(shown) == set(EVENTS)
    for section in ("## Delivery guarantee", "## Versioning", "## Bind a queue", "## Replay"):
        assert section in page
