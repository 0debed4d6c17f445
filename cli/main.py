"""The `store` command."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console

SERVICES = ("catalog", "cart", "orders", "payments", "notifications")
SERVABLE = (*SERVICES, "gateway")
DEFAULT_PORTS = {
    "gateway": 8000,
    "catalog": 8001,
    "cart": 8002,
    "orders": 8003,
    "payments": 8004,
    "notifications": 8005,
}

app = typer.Typer(
    help="Store: a commerce backend. Catalog, carts, orders, payments and notifications.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _configure_logging() -> None:
    from libs.runtime.observability import configure_logging
    from libs.runtime.settings import RuntimeSettings

    runtime = RuntimeSettings()
    configure_logging(fmt=runtime.effective_log_format, level=runtime.log_level)


def _uvicorn_options(*, internal: bool = False) -> dict[str, Any]:
    """How every process serves; `internal`: a service, called only by Store's own clients."""
    from libs.runtime.http import SERVER_KEEP_ALIVE_S

    # No proxy headers at the server: the gateway reads them itself, from configured proxies
    # only (gateway/forwarded.py); the services never use a client's address.
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "proxy_headers": False,
    }
    if internal:
        # Longer than the callers' pooled keep-alive (libs/runtime/http.py), so that a service
        # never closes a connection a caller is about to reuse. The gateway, facing browsers and
        # proxies, keeps uvicorn's short default.
        options["timeout_keep_alive"] = SERVER_KEEP_ALIVE_S
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    # Every process serves with the bounded request head (libs/runtime/http_server.py).
    options["http"] = "libs.runtime.http_server:BoundedHeadProtocol"
    return options


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    allow_network: Annotated[
        bool,
        typer.Option(
            "--allow-network",
            help="Listen on a non-loopback address although anyone who reaches it can sign in "
            "as any user (dev login, development secrets): a demo on a trusted network only.",
        ),
    ] = False,
) -> None:
    """Run the whole store in one process (embedded mode: SQLite, in-process bus and Redis)."""
    import uvicorn

    from libs.runtime.settings import RuntimeSettings

    runtime = RuntimeSettings()
    if not runtime.embedded:
        raise typer.BadParameter("`store dev` is the embedded mode; unset STORE_BROKER_URL")
    if not _is_loopback(host) and not allow_network:
        raise typer.BadParameter(
            f"{host} is reachable from the network, and the embedded mode's identities are "
            "forgeable there (dev login, development secrets); listen on 127.0.0.1, or pass "
            "--allow-network for a demo on a trusted network",
            param_hint="--host",
        )
    # Links and redirects are built on the address the store is served on, unless told another.
    public = os.environ.setdefault("GATEWAY_PUBLIC_URL", _served_on(host, port))
    _configure_logging()
    if not _is_loopback(host):
        import structlog

        structlog.get_logger("cli").warning(
            "dev.network_exposed",
            host=host,
            detail="anyone who reaches this address can sign in as any user",
        )
    console.print(f"[bold]Store[/] (embedded) on {public}  data: {runtime.data_dir}")
    console.print(f"  shop: {public}/shop/")
    console.print(f"  products: {public}/api/store/products   docs: {public}/docs")
    uvicorn.run(
        "cli.embedded:create_embedded_app",
        factory=True,
        host=host,
        port=port,
        **_uvicorn_options(),
    )


def _served_on(host: str, port: int) -> str:
    """The URL a browser on this machine uses for `--host`: a wildcard address is reached on
    loopback (another machine needs GATEWAY_PUBLIC_URL set to the name it uses)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@app.command()
def serve(
    service: Annotated[
        str, typer.Argument(help="catalog, cart, orders, payments, notifications or gateway.")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="Port; default per service (gateway 8000, catalog 8001 … notifications 8005)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run one service (distributed mode)."""
    import uvicorn

    if service not in SERVABLE:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVABLE)}")
    _configure_logging()
    target = (
        "gateway.app:create_app" if service == "gateway" else f"services.{service}.app:create_app"
    )
    uvicorn.run(
        target,
        factory=True,
        host=host,
        port=port or DEFAULT_PORTS[service],
        workers=workers,
        **_uvicorn_options(internal=service != "gateway"),
    )


@app.command()
def migrate(
    service: Annotated[
        str | None, typer.Argument(help="One service; all of them when omitted.")
    ] = None,
) -> None:
    """Apply each service's database migrations (Alembic) up to the latest."""
    from libs.runtime.db import create_engine
    from libs.runtime.migrations import upgrade

    names = [service] if service else list(SERVICES)
    for name in names:
        if name not in SERVICES:
            raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")

    async def run() -> None:
        for name in names:
            settings = _service_settings(name)
            engine = create_engine(settings.resolved_database_url())
            try:
                await upgrade(
                    engine,
                    Path(str(importlib.import_module(f"services.{name}").__file__)).parent
                    / "migrations",
                )
            finally:
                await engine.dispose()
            console.print(f"[green]migrated[/] {name}")

    asyncio.run(run())


@app.command()
def setupproducts(
    config: Annotated[
        str | None,
        typer.Option(help="A file path or inline JSON; default ONE_OFF_PRODUCTS_AVAILABLE."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
) -> None:
    """Create or update the catalog from ONE_OFF_PRODUCTS_AVAILABLE, priced in ISO_ALPHA_3_CURRENCY_CODE."""
    from services.catalog.setup import run_setupproducts

    raise typer.Exit(run_setupproducts(config=config, dry_run=dry_run))


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="The user id (`sub`).")],
    org: Annotated[
        list[str] | None,
        typer.Option("--org", help="An organization the user belongs to (repeatable)."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="A role of the user, e.g. store:admin (repeatable)."),
    ] = None,
    expires_in: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 24 * 3600,
) -> None:
    """Print a user token signed with GATEWAY_JWT_SECRET (the dev secret by default)."""
    from gateway.identity import issue_token
    from gateway.settings import DEV_JWT_SECRET

    secret = os.environ.get("GATEWAY_JWT_SECRET", DEV_JWT_SECRET)
    typer.echo(
        issue_token(user, secret=secret, orgs=org or [], roles=role or [], expires_in_s=expires_in)
    )


@app.command()
def openapi(
    admin: Annotated[
        bool, typer.Option("--admin", help="The admin API's document instead.")
    ] = False,
) -> None:
    """Print the store API's (or the admin API's) OpenAPI document."""
    from gateway.admin_router import admin_openapi
    from gateway.app import create_app

    app = create_app()
    typer.echo(json.dumps(admin_openapi(app) if admin else app.openapi(), indent=2))


@app.command()
def asyncapi() -> None:
    """Print the AsyncAPI document of every event."""
    from libs.runtime.asyncapi import asyncapi_document
    from libs.runtime.settings import RuntimeSettings

    runtime = RuntimeSettings()
    typer.echo(
        json.dumps(
            asyncapi_document(exchange=runtime.exchange, queue_prefix=runtime.queue_prefix),
            indent=2,
        )
    )


# --- store payments ... ----------------------------------------------------------------------

payments_app = typer.Typer(
    help="Payments operations: reconciliation and refunds.", no_args_is_help=True
)
app.add_typer(payments_app, name="payments")


@payments_app.command("reconcile")
def payments_reconcile() -> None:
    """Ask the provider about attempts a lost webhook left unpaid; retry pending refunds."""
    from services.payments.operations import run_reconcile

    result = asyncio.run(run_reconcile())
    typer.echo(result.model_dump_json())
    raise typer.Exit(1 if result.errors else 0)


@payments_app.command("refunds")
def payments_refunds(
    status: Annotated[
        str | None,
        typer.Option(help="Only `pending`, `succeeded`, `failed` or `canceled` refunds."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
) -> None:
    """List refunds of money that must not stay (double payments, late or mismatched money);
    `--status failed` shows those an operator must send back by hand."""
    from libs.contracts.payments import RefundStatus
    from services.payments.operations import list_refunds

    if status not in (None, *get_args(RefundStatus)):
        raise typer.BadParameter("--status is `pending`, `succeeded`, `failed` or `canceled`")
    for refund in asyncio.run(list_refunds(status=status, limit=limit)):
        typer.echo(refund.model_dump_json())


# --- store stock ... --------------------------------------------------------------------------

stock_app = typer.Typer(help="Stock of products: set what is on hand.", no_args_is_help=True)
app.add_typer(stock_app, name="stock")


@stock_app.command("set")
def stock_set(
    key: Annotated[str, typer.Argument(help="The product key.")],
    on_hand: Annotated[int, typer.Argument(min=0, help="Units on hand, not yet sold.")],
    untracked: Annotated[
        bool, typer.Option("--untracked", help="Stop tracking the product's stock.")
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="Who did it, for the event; default: cli:$USER.")
    ] = None,
) -> None:
    """Set a product's units on hand on the catalog's database (like PUT
    /api/admin/products/{key}/stock); reserved units stay reserved."""
    import getpass

    from libs.runtime.problems import ProblemError
    from services.catalog.operations import set_stock

    who = actor or f"cli:{getpass.getuser()}"
    try:
        level = asyncio.run(set_stock(key=key, on_hand=on_hand, tracked=not untracked, actor=who))
    except ProblemError as exc:
        typer.echo(f"{exc.code}: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(level.model_dump_json())


# --- store outbox: parked outbox rows ------------------------------------------------------

outbox_app = typer.Typer(help="See and release outbox rows parked after repeated failures.")
app.add_typer(outbox_app, name="outbox")


def _outbox_services(service: str | None) -> list[str]:
    if service is not None and service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return [service] if service else list(SERVICES)


async def _with_outbox(name: str, action: Any) -> Any:
    """Run `action(sessions, outbox)` against one service's database."""
    from libs.runtime.db import create_engine, new_metadata, session_factory
    from libs.runtime.outbox import outbox_table

    engine = create_engine(_service_settings(name).resolved_database_url())
    try:
        return await action(session_factory(engine), outbox_table(new_metadata()))
    finally:
        await engine.dispose()


@outbox_app.command("list")
def outbox_list(
    service: Annotated[
        str | None, typer.Argument(help="One service; all of them when omitted.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows per service.")] = 100,
) -> None:
    """List parked outbox rows: id, event type, attempts, when parked and the last error."""
    from libs.runtime.outbox import parked_rows

    async def run() -> int:
        total = 0
        for name in _outbox_services(service):
            rows = await _with_outbox(name, lambda s, o: parked_rows(s, o, limit=limit))
            total += len(rows)
            for row in rows:
                typer.echo(
                    f"{name}\t{row.id}\t{row.event_id}\t{row.type}\t{row.attempts}\t"
                    f"{row.parked_at.isoformat()}\t{row.last_error or ''}"
                )
        return total

    console.print(f"{asyncio.run(run())} parked row(s)")


@outbox_app.command("retry")
def outbox_retry(
    service: Annotated[
        str | None, typer.Argument(help="One service; all of them when omitted.")
    ] = None,
    row_id: Annotated[
        list[int] | None, typer.Option("--id", help="Only this row (repeatable).")
    ] = None,
) -> None:
    """Give parked rows back to the relay, which publishes them again from a fresh count."""
    from libs.runtime.outbox import release_parked

    async def run() -> None:
        for name in _outbox_services(service):
            released = await _with_outbox(name, lambda s, o: release_parked(s, o, row_id))
            console.print(f"[green]released[/] {released} row(s) of {name}")

    asyncio.run(run())


def _service_settings(name: str) -> Any:
    module = importlib.import_module(f"services.{name}.settings")
    return getattr(module, f"{name.capitalize()}Settings")()


def _add_groups() -> None:
    from cli.dlq import dlq_app
    from cli.orders import orders_app

    app.add_typer(dlq_app, name="dlq")
    app.add_typer(orders_app, name="orders")


_add_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
