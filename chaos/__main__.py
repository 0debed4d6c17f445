"""`python -m chaos [--quick]`: the fault suite. Exits non-zero when an invariant breaks."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from chaos.run import Plan, run, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Short faults (CI); a few minutes.")
    parser.add_argument("--shoppers", type=int, default=None, help="Concurrent shoppers.")
    parser.add_argument("--out", type=Path, default=None, help="Write the table to this file.")
    parser.add_argument(
        "--faults",
        default="",
        help="Comma-separated parts of fault names to run (e.g. 'broker cut 120,kill -9 orders'); "
        "all of them by default.",
    )
    args = parser.parse_args(argv)
    faults = tuple(part.strip() for part in args.faults.split(",") if part.strip())
    plan = Plan.make(quick=args.quick, shoppers=args.shoppers, faults=faults)
    with tempfile.TemporaryDirectory(prefix="store-chaos-") as workdir:
        try:
            rows = asyncio.run(run(plan, Path(workdir)))
        except BaseException:
            print(f"logs were in {workdir}:", file=sys.stderr)
            for log in sorted(Path(workdir).glob("*.log")):
                print(f"--- {log.name}", file=sys.stderr)
                print(
                    "\n".join(log.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr
                )
            raise
    result = table(rows)
    print(result)
    for row in rows:
        for line in row.detail:
            print(f"  {row.fault}: {line}")
    if args.out:
        args.out.write_text(result + "\n")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
