"""The result table, the targets of the performance issue judged against it, and the
Markdown written to docs/performance.md."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from bench.wrk import Measure


@dataclass
class Row:
    workload: str
    measure: Measure | None = None
    failure: str = ""  # the workload could not run at all: why
    note: str = ""

    def ratio(self, ceiling: float | None) -> float | None:
        if self.measure is None or not ceiling:
            return None
        return self.measure.rps / ceiling


@dataclass
class Target:
    text: str
    measured: str
    met: bool | None  # None: could not be measured


@dataclass
class Results:
    machine: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    memory: dict[str, float | None] = field(default_factory=dict)
    payment_late: int | None = None
    payment_rate: float | None = None
    payment_late_after_s: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)  # Markdown, with `--profile`

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.workload == name), None)

    def rps_of(self, name: str) -> float | None:
        row = self.row(name)
        if row and row.measure and row.measure.requests:
            return row.measure.rps
        return None

    @property
    def ceiling_rps(self) -> float | None:
        return self.rps_of(CEILING)

    @property
    def hop_rps(self) -> float | None:
        """The one-hop ceiling: the throughput targets are shares of it."""
        return self.rps_of(CEILING_HOP)


CEILING = "ceiling: bare FastAPI app"
CEILING_AGAIN = "ceiling again, after the store stopped"
CEILING_HOP = "ceiling behind one ServiceClient hop"
LOADGEN = "load generator ceiling: wrk vs canned server"
PRODUCT_LIST = "product list page (de, 20/page)"
PRODUCT_BY_KEY = "product by key"
ADD_NEW = "add to cart, new shoppers"
ADD_RETURNING = "add to cart, returning shoppers"
SUMMARY = "cart summary, {} lines"
OPEN_LOOP = "{}, {:g}/s offered (open loop)"
CATALOG = "catalog list page, {} products"
SEARCH = "search pages, {} products, {}"
# Queries on the generated catalog ("Product N", "Synthetic product number N."): a word every
# product has, one few have, and a typo of the common one (two letters swapped).
SEARCH_QUERIES = {"common word": "synthetic", "rare word": "4242", "typo": "sytnhetic"}
CHECKOUT = "checkout (add, billing, checkout)"
PAYMENT = "payment → order paid (bus)"
CHECKOUT_STOCK = "checkout with shipping and stock (the product tracks stock)"
ARCHIVE = "order archive, {} page, shopper with {} orders"
OUTBOX = "outbox publish latency, {}"
OUTBOX_EMPTY = OUTBOX.format("no published rows retained")
OUTBOX_FULL = OUTBOX.format("{} published rows retained")

# The open-loop latency target of the cart paths (issue #14): p99 at this offered rate.
OPEN_LOOP_RATE = 150.0
OPEN_LOOP_WORKLOADS = (ADD_NEW, ADD_RETURNING, SUMMARY.format(5))


def _fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def cells(row: Row, ceiling: float | None, hop: float | None = None) -> list[str]:
    m = row.measure
    if m is None:
        return [row.workload, "-", "-", "-", "failed", "-", "-", row.failure]
    errors = str(m.errors) + (f" ({m.error_detail})" if m.error_detail else "")
    note = row.note
    if not m.requests:
        note = "no request completed in time" + (f"; {note}" if note else "")
        return [row.workload, "0", "-", "-", errors, "0%", "0%", note]
    if m.loadgen_cpu is not None and row.workload in (CEILING, CEILING_AGAIN, LOADGEN):
        note = (note + "; " if note else "") + f"wrk used {m.loadgen_cpu:.2f} CPU cores"

    def share(base: float | None) -> str:
        ratio = row.ratio(base)
        return "-" if ratio is None else f"{ratio:.0%}"

    return [
        row.workload,
        f"{m.rps:,.0f}",
        _fmt_ms(m.p50_ms),
        _fmt_ms(m.p99_ms),
        errors,
        share(ceiling),
        share(hop),
        note,
    ]


HEADERS = ["workload", "requests/s", "p50", "p99", "errors", "vs ceiling", "vs one hop", "notes"]


def targets(results: Results) -> list[Target]:
    """The targets of issue #14 (round two), judged on this run alone."""
    hop = results.hop_rps
    found: list[Target] = []

    def usable(name: str) -> Measure | None:
        row = results.row(name)
        if row is None or row.measure is None or not row.measure.requests:
            return None
        return row.measure

    def unmeasured(text: str) -> None:
        found.append(Target(text, "not measured", None))

    def share(name: str, goal: float) -> None:
        text = f"{name}: ≥ {goal:.0%} of the one-hop ceiling"
        m = usable(name)
        if m is None or not hop:
            unmeasured(text)
            return
        ratio = m.rps / hop
        errs = f", {m.errors} errors" if m.errors else ""
        found.append(
            Target(
                text,
                f"{ratio:.0%} ({m.rps:,.0f} vs {hop:,.0f}/s){errs}",
                ratio >= goal and not m.errors,
            )
        )

    def p99(name: str, goal_ms: float, label: str = "") -> None:
        text = f"{label or name}: p99 ≤ {goal_ms:.0f} ms"
        m = usable(name)
        if m is None:
            unmeasured(text)
            return
        errs = f", {m.errors} errors" if m.errors else ""
        found.append(Target(text, _fmt_ms(m.p99_ms) + errs, m.p99_ms <= goal_ms and not m.errors))

    def relative(name: str, base: str, factor: float) -> None:
        a, b = usable(name), usable(base)
        text = f"{name}: p50 ≤ {factor:g}x {base}"
        if a is None or b is None:
            unmeasured(text)
            return
        ratio = a.p50_ms / b.p50_ms if b.p50_ms else float("inf")
        # A latency ratio: judged on the latencies; errors are shown, not held against it.
        errors = a.errors + b.errors
        found.append(
            Target(
                text,
                f"{ratio:.2f}x ({_fmt_ms(a.p50_ms)} vs {_fmt_ms(b.p50_ms)})"
                + (f", {errors} errors" if errors else ""),
                ratio <= factor,
            )
        )

    for name in OPEN_LOOP_WORKLOADS:
        share(name, 0.50)
    for name in OPEN_LOOP_WORKLOADS:
        p99(OPEN_LOOP.format(name, OPEN_LOOP_RATE), 50)
    relative(SUMMARY.format(50), SUMMARY.format(1), 1.5)

    catalogs = [r.workload for r in results.rows if r.workload.startswith(CATALOG.split("{")[0])]
    for name in catalogs or [CATALOG.format("100k")]:
        share(name, 0.35)
    relative(CATALOG.format("100k"), CATALOG.format("1k"), 1.5)

    searches = [r.workload for r in results.rows if r.workload.startswith(SEARCH.split("{")[0])]
    for name in searches or [SEARCH.format("100k", kind) for kind in SEARCH_QUERIES]:
        share(name, 0.35)
    for kind in SEARCH_QUERIES:
        relative(SEARCH.format("100k", kind), SEARCH.format("1k", kind), 1.5)

    checkout = usable(CHECKOUT)
    text = "checkout: ≥ 40/s at 32 shoppers, p99 ≤ 1 s"
    row = results.row(CHECKOUT)
    if checkout is None or row is None:
        unmeasured(text)
    else:
        errs = f", {checkout.errors} errors" if checkout.errors else ""
        found.append(
            Target(
                text,
                f"{checkout.rps:.0f}/s, p99 {_fmt_ms(checkout.p99_ms)} ({row.note}){errs}",
                checkout.rps >= 40 and checkout.p99_ms <= 1000 and not checkout.errors,
            )
        )

    stocked = usable(CHECKOUT_STOCK)
    text = "checkout with shipping and stock: ≥ 40/s at 32 shoppers, p99 ≤ 1 s"
    if stocked is None:
        if results.row(CHECKOUT_STOCK) is not None:
            unmeasured(text)
    else:
        errs = f", {stocked.errors} errors" if stocked.errors else ""
        found.append(
            Target(
                text,
                f"{stocked.rps:.0f}/s, p99 {_fmt_ms(stocked.p99_ms)}{errs}",
                stocked.rps >= 40 and stocked.p99_ms <= 1000 and not stocked.errors,
            )
        )

    pay = usable(PAYMENT)
    rate = results.payment_rate or 100
    bound = results.payment_late_after_s or 10
    text = (
        f"payment → order paid: 100/s offered for 30 s, p99 ≤ 100 ms, none late "
        f"(late: not paid {bound:g} s after its /pay)"
    )
    if pay is None or results.payment_late is None:
        unmeasured(text)
    else:
        found.append(
            Target(
                text,
                f"{pay.requests:,} at {rate:g}/s: p99 {_fmt_ms(pay.p99_ms)}, "
                f"{results.payment_late} late",
                pay.p99_ms <= 100
                and results.payment_late == 0
                and pay.errors == 0
                and rate >= 100
                and pay.requests >= 3000,
            )
        )

    archives = [r.workload for r in results.rows if r.workload.startswith(ARCHIVE.split("{")[0])]
    for name in archives:
        if name.endswith(" 10 orders"):
            continue
        page = name.split(",")[1].strip().removesuffix(" page")
        small = ARCHIVE.format(page, 10)
        relative(name, small, 1.5)
    if not archives:
        unmeasured("order archive, 10k orders: first and deep pages ≤ 1.5x 10 orders")

    full = [r.workload for r in results.rows if r.workload.startswith(OUTBOX.split("{")[0])]
    full = [name for name in full if name != OUTBOX_EMPTY]
    for name in full or [OUTBOX_FULL.format("1M")]:
        relative(name, OUTBOX_EMPTY, 1.5)

    if not results.memory:
        unmeasured("each service ≤ 150 MB resident")
    for name, mb in results.memory.items():
        found.append(
            Target(
                f"{name} ≤ 150 MB resident",
                "not measured" if mb is None else f"{mb:.0f} MB",
                None if mb is None else mb <= 150,
            )
        )
    return found


def verdict(target: Target) -> str:
    return {True: "met", False: "NOT met", None: "not measured"}[target.met]


def print_results(results: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    # Wide enough for the notes when the output is a CI log rather than a terminal.
    console = Console() if sys.stdout.isatty() else Console(width=180)
    ceiling, hop = results.ceiling_rps, results.hop_rps
    table = Table(title="Store benchmark (32 connections unless noted)")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in results.rows:
        table.add_row(*cells(row, ceiling, hop))
    console.print(table)
    memory = Table(title="Resident memory after the run")
    memory.add_column("service")
    memory.add_column("RSS")
    for name, mb in results.memory.items():
        memory.add_row(name, "-" if mb is None else f"{mb:.0f} MB")
    console.print(memory)
    goals = Table(title="Targets")
    goals.add_column("target")
    goals.add_column("measured")
    goals.add_column("verdict")
    for target in targets(results):
        style = {True: "green", False: "red", None: "yellow"}[target.met]
        goals.add_row(target.text, target.measured, f"[{style}]{verdict(target)}[/]")
    console.print(goals)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: Results) -> str:
    ceiling, hop = results.ceiling_rps, results.hop_rps
    lines = ["### Machine", ""]
    lines += [f"- {k}: {v}" for k, v in results.machine.items()]
    lines += [f"- {k}: {v}" for k, v in results.settings.items()]
    lines += ["", "### Results", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in results.rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in cells(row, ceiling, hop)) + " |")
    lines += ["", "### Resident memory after the run", "", "| service | RSS |", "|---|---|"]
    for name, mb in results.memory.items():
        lines.append(f"| {name} | {'-' if mb is None else f'{mb:.0f} MB'} |")
    lines += ["", "### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for target in targets(results):
        lines.append(
            f"| {_md_escape(target.text)} | {_md_escape(target.measured)} | {verdict(target)} |"
        )
    return "\n".join(lines) + "\n"
