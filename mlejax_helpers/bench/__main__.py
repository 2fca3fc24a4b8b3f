"""Command line: ``python -m mlejax_helpers.bench SUITE [SUITE ...]``."""

from __future__ import annotations

import argparse
import shlex
import sys

from .records import check_writable
from .runner import GiB, Terminated, run
from .suites import SUITES, configs_for


def _suite_help() -> str:
    lines = [
        f"  {name:8s} {fn.__doc__.strip().splitlines()[0]} ({len(fn())} configurations)"
        for name, fn in SUITES.items()
    ]
    lines.append("  all      every suite above but smoke")
    return "\n".join(lines)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


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
        help="JSON Lines file of your own to append to (required unless --list); the book's "
        "stored run, results/bench-cpu.jsonl, is written only when named here",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the configurations recorded as errors, time-outs, out of memory or "
        "interrupted",
    )
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=600,
        help="seconds one configuration may take (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=_positive(float),
        default=None,
        help="kill a configuration above this resident memory (default: none)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive(int),
        default=3,
        help="fits per configuration, median reported (default: %(default)s)",
    )
    parser.add_argument(
        "--common-draws",
        type=_positive(int),
        default=200,
        help="Halton draws of the common set every estimate is scored on",
    )
    parser.add_argument(
        "--process-repeats",
        type=_positive(int),
        default=1,
        help="measure each configuration this many times, each in a fresh process, in a "
        "shuffled order (default: %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    argv = sys.argv[1:] if argv is None else list(argv)
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
    if args.out is None:
        parser.error("--out is required: name a JSON Lines file of your own")
    try:
        check_writable(args.out)
    except ValueError as exc:
        parser.error(str(exc))
    limit = args.memory_limit_gb * GiB if args.memory_limit_gb else None
    try:
        records = _run(args, configs, limit, argv)
    except Terminated:
        print(
            f"stopped by SIGTERM: the configuration under way is in {args.out} as interrupted",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        print(
            f"interrupted: the configuration under way is in {args.out} as interrupted",
            file=sys.stderr,
        )
        return 130
    for r in records:
        print(
            f"{r['suite']:7s} {r['label']:45s} N={r['n']:>7} J={r['j']:>3} R={r['r']:>3} "
            f"{r.get('fit_s_median') or float('nan'):8.3f} s  {r['outcome']}"
        )
    print(f"{len(records)} new records in {args.out}")
    return 0


def _run(args, configs, limit, argv):
    return run(
        configs,
        args.out,
        timeout=args.timeout,
        memory_limit=limit,
        repeats=args.repeats,
        common_draws=args.common_draws,
        progress=not args.no_progress,
        retry_failed=args.retry_failed,
        process_repeats=args.process_repeats,
        command=shlex.join(["python", "-m", "mlejax_helpers.bench", *argv]),
    )


if __name__ == "__main__":
    sys.exit(main())
