"""`store dlq`: see and replay a consumer's dead letters (RabbitMQ, distributed mode)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from libs.contracts.topology import CONSUMERS

dlq_app = typer.Typer(
    help="Dead letters: events a consumer gave up on after its retry budget.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

Service = Annotated[str, typer.Argument(help=f"The consumer: {', '.join(CONSUMERS)}.")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many messages.")]


def _broker(service: str) -> tuple[str, str]:
    from libs.runtime.settings import RuntimeSettings

    if service not in CONSUMERS:
        err.print(f"[red]unknown service {service!r}; one of: {', '.join(CONSUMERS)}[/red]")
        raise typer.Exit(2)
    settings = RuntimeSettings()
    if settings.embedded:
        err.print(
            "[red]STORE_BROKER_URL is memory://: the embedded bus keeps dead letters in memory "
            "only; set it to the RabbitMQ URL of the deployment.[/red]"
        )
        raise typer.Exit(2)
    return settings.broker_url, settings.queue_prefix


@dlq_app.command("list")
def list_(service: Service, limit: Limit = 20) -> None:
    """Show a consumer's dead letters (they stay where they are)."""
    from libs.runtime.dead_letters import list_dead_letters

    url, prefix = _broker(service)
    letters = asyncio.run(list_dead_letters(url, prefix=prefix, consumer=service, limit=limit))
    table = Table("event id", "type", "attempts", "replays", "dead-lettered at", "last error")
    for letter in letters:
        table.add_row(
            letter.event_id,
            letter.type,
            str(letter.attempts),
            str(letter.replays),
            letter.dead_lettered_at.isoformat() if letter.dead_lettered_at else "",
            letter.last_error,
        )
    out.print(table)
    err.print(f"{len(letters)} dead letter(s) shown for {service}")


@dlq_app.command()
def replay(service: Service, limit: Limit = 100) -> None:
    """Move a consumer's dead letters back to its queue, history kept, with a fresh budget."""
    from libs.runtime.dead_letters import replay_dead_letters

    url, prefix = _broker(service)
    moved = asyncio.run(replay_dead_letters(url, prefix=prefix, consumer=service, limit=limit))
    err.print(f"{moved} dead letter(s) moved back to {service}'s queue")
