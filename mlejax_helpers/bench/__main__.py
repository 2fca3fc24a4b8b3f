"""Command line: ``python -m mlejax_helpers.bench SUITE [SUITE ...]``."""

from __future__ import annotations

import argparse
import sys

from .runner import GiB, run
from .suites import SUITES, configs_for


def _suite_help() -> str:
    lines = [
        f"  {name:8s} {fn.__doc__.strip().splitlines()[0]} ({len(fn())} configurations)"
        for name, fn in SUITES.items()
    ]
    lines.append("  all      table1, table2, table4 and beyond")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlejax_helpers.bench",
        description="Time mixed logit estimators honestly: each configuration runs in its own "
        "process with a time and memory limit; one JSON Lines record per configuration is "
        "appended as soon as it is measured, and configurations already in the file are skipped.",
        epilog="suites:\n" + _suite_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("suites", nargs="+", help="one or more of the suites listed below")
    parser.add_argument(
        "--out",
        default="results/bench-cpu.jsonl",
        help="JSON Lines file to append to (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds one configuration may take (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="kill a configuration above this resident memory (default: none)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fits per configuration, median reported (default: %(default)s)",
    )
    parser.add_argument(
        "--common-draws",
        type=int,
        default=200,
        help="Halton draws of the common set every estimate is scored on",
    )
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        configs = configs_for(args.suites)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for c in configs:
            print(
                f"{c.suite:7s} {c.key} {c.label:45s} N={c.n} J={c.j} R={c.r} "
                f"alloc={c.allocator} device={c.device}"
            )
        return 0
    limit = args.memory_limit_gb * GiB if args.memory_limit_gb else None
    records = run(
        configs,
        args.out,
        timeout=args.timeout,
        memory_limit=limit,
        repeats=args.repeats,
        common_draws=args.common_draws,
        progress=not args.no_progress,
    )
    for r in records:
        print(
            f"{r['suite']:7s} {r['label']:45s} N={r['n']:>7} J={r['j']:>3} R={r['r']:>3} "
            f"{r.get('fit_s_median') or float('nan'):8.3f} s  {r['outcome']}"
        )
    print(f"{len(records)} new records in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
