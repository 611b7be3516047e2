"""Command line of the generator (``baoxue gen`` once the project CLI wires it in)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from baoxue.synth.config import SynthConfig
from baoxue.synth.generator import generate_district


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed so a parent CLI can mount it as a sub-command)."""
    parser = argparse.ArgumentParser(
        prog="baoxue gen", description="Generate a synthetic district: children, department feeds, 学籍."
    )
    parser.add_argument("--children", type=int, default=60_000, help="number of children (default 60000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    parser.add_argument("--period", default="2026-09", help="latest feed period, YYYY-MM (default 2026-09)")
    parser.add_argument(
        "--previous-period", default="2026-03", help="earlier feed period, or 'none' (default 2026-03)"
    )
    parser.add_argument(
        "--as-of", type=date.fromisoformat, default=date(2026, 8, 31), help="school-age cut-off date"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator from command-line arguments; returns the process exit status.

    A leading ``--`` (left by a parent CLI that forwards its remaining arguments) is ignored.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    args = build_parser().parse_args(arguments)
    if args.children < 0:
        print("--children must be >= 0", file=sys.stderr)
        return 2
    previous = None if str(args.previous_period).lower() == "none" else args.previous_period
    config = SynthConfig(
        children=args.children, seed=args.seed, period=args.period, previous_period=previous, as_of=args.as_of
    )
    started = time.perf_counter()
    manifest = generate_district(config, args.out)
    elapsed = time.perf_counter() - started
    if not args.quiet:
        rate = args.children / elapsed if elapsed > 0 else float("inf")
        print(f"{args.children} children in {elapsed:.1f} s ({rate:,.0f}/s) → {args.out}")
        for rel, rows in sorted(manifest.files.items()):
            print(f"  {rel}: {rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
