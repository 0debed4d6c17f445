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
    payment_lost: int | None = None
    payment_rate: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)  # Markdown, with `--profile`

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.workload == name), None)

    @property
    def ceiling_rps(self) -> float | None:
        ceiling = self.row(CEILING)
        if ceiling and ceiling.measure and ceiling.measure.requests:
            return ceiling.measure.rps
        return None


CEILING = "ceiling: bare FastAPI app"
CEILING_AGAIN = "ceiling again, after the store stopped"
CEILING_HOP = "ceiling behind one ServiceClient hop"
LOADGEN = "load generator ceiling: wrk vs canned server"
PRODUCT_LIST = "product list page (de, 20/page)"
PRODUCT_BY_KEY = "product by key"
ADD_NEW = "add to cart, new shoppers"
ADD_RETURNING = "add to cart, returning shoppers"
SUMMARY = "cart summary, {} lines"
CATALOG = "catalog list page, {} products"
CHECKOUT = "checkout (add, billing, checkout)"
PAYMENT = "payment → order paid (bus)"


def _fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def cells(row: Row, ceiling: float | None) -> list[str]:
    m = row.measure
    if m is None:
        return [row.workload, "-", "-", "-", "failed", "-", row.failure]
    ratio = row.ratio(ceiling)
    errors = str(m.errors) + (f" ({m.error_detail})" if m.error_detail else "")
    note = row.note
    if not m.requests:
        note = "no request completed in time" + (f"; {note}" if note else "")
        return [row.workload, "0", "-", "-", errors, "0%", note]
    if m.loadgen_cpu is not None and row.workload in (CEILING, CEILING_AGAIN, LOADGEN):
        note = (note + "; " if note else "") + f"wrk used {m.loadgen_cpu:.2f} CPU cores"
    return [
        row.workload,
        f"{m.rps:,.0f}",
        _fmt_ms(m.p50_ms),
        _fmt_ms(m.p99_ms),
        errors,
        "-" if ratio is None else f"{ratio:.0%}",
        note,
    ]


HEADERS = ["workload", "requests/s", "p50", "p99", "errors", "vs ceiling", "notes"]


def targets(results: Results) -> list[Target]:
    ceiling = results.ceiling_rps
    found: list[Target] = []

    def usable(name: str) -> Measure | None:
        row = results.row(name)
        if row is None or row.measure is None or not row.measure.requests:
            return None
        return row.measure

    def share(name: str, goal: float) -> None:
        m = usable(name)
        if m is None or not ceiling:
            found.append(Target(f"{name}: ≥ {goal:.0%} of the ceiling", "not measured", None))
            return
        ratio = m.rps / ceiling
        ok = ratio >= goal and m.errors == 0
        errs = f", {m.errors} errors" if m.errors else ""
        found.append(Target(f"{name}: ≥ {goal:.0%} of the ceiling", f"{ratio:.0%}{errs}", ok))

    def p99(name: str, goal_ms: float) -> None:
        m = usable(name)
        if m is None:
            found.append(Target(f"{name}: p99 ≤ {goal_ms:.0f} ms", "not measured", None))
            return
        found.append(
            Target(
                f"{name}: p99 ≤ {goal_ms:.0f} ms",
                _fmt_ms(m.p99_ms),
                m.p99_ms <= goal_ms and m.errors == 0,
            )
        )

    def relative(name: str, base: str, factor: float) -> None:
        a, b = usable(name), usable(base)
        text = f"{name}: p50 ≤ {factor:g}x {base}"
        if a is None or b is None:
            found.append(Target(text, "not measured", None))
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

    for name in (ADD_NEW, ADD_RETURNING, SUMMARY.format(5)):
        share(name, 0.25)
    share(PRODUCT_LIST, 0.30)
    for name in (ADD_NEW, ADD_RETURNING, SUMMARY.format(5), PRODUCT_LIST):
        p99(name, 50)
    relative(SUMMARY.format(50), SUMMARY.format(1), 2.0)
    relative(CATALOG.format("100k"), CATALOG.format("1k"), 1.5)

    pay = usable(PAYMENT)
    rate = results.payment_rate
    text = f"payment → paid: p99 ≤ 100 ms at {rate or 100:.0f}/s, none lost"
    if pay is None or results.payment_lost is None:
        found.append(Target(text, "not measured", None))
    else:
        found.append(
            Target(
                text,
                f"p99 {_fmt_ms(pay.p99_ms)}, {results.payment_lost} lost",
                pay.p99_ms <= 100 and results.payment_lost == 0 and pay.errors == 0,
            )
        )
    if not results.memory:
        found.append(Target("each service ≤ 150 MB resident", "not measured", None))
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
    ceiling = results.ceiling_rps
    table = Table(title="Store benchmark (32 connections unless noted)")
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in results.rows:
        table.add_row(*cells(row, ceiling))
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
    ceiling = results.ceiling_rps
    lines = ["### Machine", ""]
    lines += [f"- {k}: {v}" for k, v in results.machine.items()]
    lines += [f"- {k}: {v}" for k, v in results.settings.items()]
    lines += ["", "### Results", ""]
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in results.rows:
        lines.append("| " + " | ".join(_md_escape(c) for c in cells(row, ceiling)) + " |")
    lines += ["", "### Resident memory after the run", "", "| service | RSS |", "|---|---|"]
    for name, mb in results.memory.items():
        lines.append(f"| {name} | {'-' if mb is None else f'{mb:.0f} MB'} |")
    lines += ["", "### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for target in targets(results):
        lines.append(
            f"| {_md_escape(target.text)} | {_md_escape(target.measured)} | {verdict(target)} |"
        )
    return "\n".join(lines) + "\n"
