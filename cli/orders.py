"""`store orders`: the operator's orders from a shell, through the gateway's admin API.

Every command is one HTTP call (or two, when an order is named by its number) to
`/api/admin/*`, exactly as any other admin client makes it:

- the gateway: `--url`, else `STORE_API_URL`, else http://127.0.0.1:8000 (`store dev`);
- the credential: `STORE_ADMIN_TOKEN` (a bearer token with the `store:admin` role, e.g. from
  `store token ops@shop --role store:admin` where the signing secret is at hand, or from the
  identity provider). Without it, a short-lived admin token is minted only when
  GATEWAY_JWT_SECRET is unset or is the dev secret — which opens nothing but a development
  store, since the distributed mode refuses to start with it. A real secret is never used
  implicitly: set STORE_ADMIN_TOKEN.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8000"
CLI_ACTOR = "store-cli"
MINTED_TOKEN_S = 300
ORDER_NUMBER = re.compile(r"^\d{4}-\d{1,12}$")

orders_app = typer.Typer(
    help="Orders through the admin API: list, show, cancel, refund, fulfil. The gateway is "
    f"--url or STORE_API_URL (default {DEFAULT_URL}); the token is STORE_ADMIN_TOKEN (minted "
    "for you only with the dev GATEWAY_JWT_SECRET).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="STORE_API_URL", help="The gateway's base URL.", show_default=True
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
OrderArg = Annotated[str, typer.Argument(help="The order's id or number (e.g. 2027-000042).")]
Lines = Annotated[
    list[str] | None,
    typer.Option(
        "--line", help="PRICING_ID=QUANTITY, repeatable; default: every line (what is left)."
    ),
]


class CliError(Exception):
    """Something the operator must fix; printed without a traceback."""


def admin_token() -> str:
    """STORE_ADMIN_TOKEN, else a short-lived token minted with the dev secret (only that)."""
    from gateway.identity import ADMIN_ROLE, issue_token
    from gateway.settings import DEV_JWT_SECRET

    given = os.environ.get("STORE_ADMIN_TOKEN", "").strip()
    if given:
        return given
    secret = os.environ.get("GATEWAY_JWT_SECRET") or DEV_JWT_SECRET
    if secret != DEV_JWT_SECRET:
        raise CliError(
            "Set STORE_ADMIN_TOKEN to a token with the store:admin role (for instance "
            "`store token YOU --role store:admin`); this command never signs with a real "
            "GATEWAY_JWT_SECRET by itself."
        )
    actor = os.environ.get("STORE_ADMIN_ACTOR") or CLI_ACTOR
    return issue_token(actor, secret=secret, roles=[ADMIN_ROLE], expires_in_s=MINTED_TOKEN_S)


class AdminApi:
    """The admin API over HTTP, one problem+json answer turned into one CliError."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 30) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        import httpx

        try:
            response = self.http.request(
                method,
                f"/api/admin{path}",
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise CliError(f"Cannot reach the gateway at {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise CliError(_problem_text(response))
        return response.json() if response.content else None

    def order_id(self, order: str) -> str:
        """The id of an order named by id or number."""
        if ORDER_NUMBER.match(order):
            return str(self.call("GET", f"/orders/{order}")["id"])
        return order

    def close(self) -> None:
        self.http.close()


def _problem_text(response: Any) -> str:
    try:
        problem = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    text = f"{response.status_code} {problem.get('code', '')}: {problem.get('detail') or problem.get('title')}"
    for error in problem.get("errors") or []:
        text += f"\n  {error.get('field')}: {error.get('message')}"
    if response.status_code == 401:
        text += "\n  (STORE_ADMIN_TOKEN missing, expired or signed with another key?)"
    elif response.status_code == 403:
        text += "\n  (the token lacks the store:admin role)"
    return text


def _parse_lines(lines: list[str] | None) -> list[dict[str, Any]] | None:
    if not lines:
        return None
    parsed = []
    for line in lines:
        pricing_id, sep, quantity = line.partition("=")
        if not sep or not pricing_id or not quantity.isdigit():
            raise CliError(f"--line {line!r}: expected PRICING_ID=QUANTITY")
        parsed.append({"pricing_id": pricing_id, "quantity": int(quantity)})
    return parsed


def _lines_or_exit(lines: list[str] | None) -> list[dict[str, Any]] | None:
    try:
        return _parse_lines(lines)
    except CliError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


def _run(url: str, work: Any) -> Any:
    try:
        api = AdminApi(url, admin_token())
        try:
            return work(api)
        finally:
            api.close()
    except CliError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(1) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _money(amount: int | None, currency: str) -> str:
    from libs.contracts.money import currency_exponent

    if amount is None:
        return ""
    digits = currency_exponent(currency)
    return f"{amount / 10**digits:.{digits}f} {currency}"


def _status(order: dict[str, Any]) -> str:
    # `status` arrives with order cancel; until then, paid or not says it.
    return str(order.get("status") or ("paid" if order.get("paid") else "pending"))


def _orders_table(orders: list[dict[str, Any]]) -> Table:
    table = Table("number", "id", "created", "status", "fulfilment", "total", "refunded", "e-mail")
    for column in table.columns[:2]:
        column.no_wrap = True
    for order in orders:
        table.add_row(
            order["number"],
            order["id"],
            order["created_at"][:19].replace("T", " "),
            _status(order),
            order.get("fulfillment_status") or "-",
            _money(order["total"], order["currency"]),
            _money(order.get("refunded_amount") or 0, order["currency"]),
            (order.get("details") or {}).get("billing", {}).get("email") or "",
        )
    return table


def _order_summary(order: dict[str, Any]) -> None:
    out.print(_orders_table([order]))
    lines = Table("line", "pricing id", "quantity", "total", "ships", title="lines")
    for line in (order.get("details") or {}).get("lines", []):
        lines.add_row(
            line.get("name", ""),
            line.get("pricing_id", ""),
            str(line.get("quantity", "")),
            _money(line.get("total"), order["currency"]),
            "yes" if line.get("shippable") else "",
        )
    out.print(lines)
    for title, rows, columns in (
        ("payments", order.get("payments") or [], ("attempt_id", "status", "provider", "total")),
        ("refunds", order.get("refunds") or [], ("id", "status", "amount", "reason")),
        ("disputes", order.get("disputes") or [], ("id", "status", "amount", "reason")),
        (
            "fulfilments",
            order.get("fulfillments") or [],
            ("id", "carrier", "tracking_number", "tracking_url"),
        ),
    ):
        if rows:
            table = Table(*columns, title=title)
            for row in rows:
                table.add_row(*(str(row.get(c) if row.get(c) is not None else "") for c in columns))
            out.print(table)


@orders_app.command("list")
def list_orders(
    url: Url = DEFAULT_URL,
    status: Annotated[
        str | None, typer.Option(help="pending, paid or canceled.", show_default=False)
    ] = None,
    email: Annotated[str | None, typer.Option(help="The billing e-mail.")] = None,
    number: Annotated[str | None, typer.Option(help="The order number.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Orders per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """List orders, newest first, one page (the next page's cursor is printed after it)."""
    params = {"status": status, "email": email, "number": number, "limit": limit, "cursor": cursor}
    page = _run(url, lambda api: api.call("GET", "/orders", params=params))
    if as_json:
        _print_json(page)
        return
    out.print(_orders_table(page["items"]))
    if page.get("next_cursor"):
        err.print(f"next page: --cursor {page['next_cursor']}", highlight=False)


@orders_app.command()
def show(order: OrderArg, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Show one order in full: lines, payments, refunds, disputes, fulfilments."""
    found = _run(url, lambda api: api.call("GET", f"/orders/{order}"))
    if as_json:
        _print_json(found)
    else:
        _order_summary(found)


@orders_app.command()
def cancel(order: OrderArg, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Cancel an unpaid order (POST /api/admin/orders/{id}/cancel)."""
    done = _run(url, lambda api: api.call("POST", f"/orders/{api.order_id(order)}/cancel"))
    _print_json(done) if as_json else _order_summary(done)


@orders_app.command()
def refund(
    order: OrderArg,
    reason: Annotated[str, typer.Option(help="Why the money goes back.")] = "operator",
    amount: Annotated[
        int | None, typer.Option(min=1, help="Minor units; default: what is left of the paid.")
    ] = None,
    line: Lines = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Repeat a refund safely with the same key; default: a new one."),
    ] = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Refund a paid order, in full or in part (POST /api/admin/orders/{id}/refunds)."""
    body: dict[str, Any] = {"reason": reason}
    if amount is not None:
        body["amount"] = amount
    lines = _lines_or_exit(line)
    if lines:
        body["lines"] = lines
    key = idempotency_key or str(uuid.uuid4())
    done = _run(
        url,
        lambda api: api.call(
            "POST",
            f"/orders/{api.order_id(order)}/refunds",
            body=body,
            headers={"idempotency-key": key},
        ),
    )
    _print_json(done)


@orders_app.command()
def fulfil(
    order: OrderArg,
    carrier: Annotated[str, typer.Option(help="Who carries the parcel, e.g. DHL.")],
    tracking_number: Annotated[str, typer.Option(help="The carrier's tracking number.")],
    tracking_url: Annotated[
        str | None, typer.Option(help="An https:// link for the shopper to follow.")
    ] = None,
    line: Lines = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Ship goods of a paid order (POST /api/admin/orders/{id}/fulfillments)."""
    body: dict[str, Any] = {"carrier": carrier, "tracking_number": tracking_number}
    if tracking_url:
        body["tracking_url"] = tracking_url
    lines = _lines_or_exit(line)
    if lines:
        body["lines"] = lines
    done = _run(
        url,
        lambda api: api.call("POST", f"/orders/{api.order_id(order)}/fulfillments", body=body),
    )
    _print_json(done) if as_json else _order_summary(done)
