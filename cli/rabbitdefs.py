"""RabbitMQ definitions of the store's topology, imported by the broker on its first boot.

`python -m cli.rabbitdefs > deploy/rabbitmq/definitions.json` regenerates the committed
file from `libs/contracts/topology.py`; a contract test fails when it is out of date.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def render() -> str:
    """The definitions file's text for the default exchange, queue prefix and retry ladder."""
    from libs.contracts import events  # noqa: F401  (fills EVENTS)
    from libs.contracts.envelope import EVENTS
    from libs.contracts.topology import definitions

    document: dict[str, Any] = definitions(published=EVENTS)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
