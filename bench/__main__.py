"""`python -m bench [--quick]`: the benchmark (see docs/performance.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.report import markdown, print_results
from bench.run import GROUPS, plan, run

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START = "<!-- bench:results:start (written by `python -m bench`; edit outside these marks) -->"
END = "<!-- bench:results:end -->"


def write_doc(text: str, path: Path = DOC) -> None:
    """Replace the generated part of docs/performance.md, keeping the rest as written."""
    block = f"{START}\n\n{text}\n{END}"
    if path.exists():
        current = path.read_text()
        if START in current and END in current:
            head, rest = current.split(START, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + block + tail)
            return
        path.write_text(current.rstrip() + "\n\n" + block + "\n")
        return
    path.write_text(
        "# Performance\n\nMeasured with `python -m bench` (see bench/).\n\n" + block + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Seconds per workload, 1k catalog only, few payments; prints, writes nothing.",
    )
    parser.add_argument("--workers", type=int, default=1, help="`store serve --workers N`.")
    parser.add_argument(
        "--no-write", action="store_true", help="Do not update docs/performance.md."
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        help="Record each service with py-spy during each workload into DIR and print where "
        "the time goes (profiling slows the services: this run's figures are not written).",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"Comma-separated workload groups ({', '.join(GROUPS)}); the ceilings always run. "
        "A partial run prints only.",
    )
    args = parser.parse_args(argv)
    only = frozenset(g for g in args.only.split(",") if g)
    if unknown := only - set(GROUPS):
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = run(plan(quick=args.quick, workers=args.workers, only=only), profile_dir=args.profile)
    print_results(results)
    if args.profile is not None:
        summary = "\n".join(results.profiles) or "(no profiles: is py-spy installed?)\n"
        (args.profile / "summary.md").write_text(summary)
        print(summary)
        print(f"profiles in {args.profile}", file=sys.stderr)
        return 0
    if not args.quick and not args.no_write and not only:
        write_doc(markdown(results))
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
