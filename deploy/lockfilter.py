"""Select part of the hash-pinned requirements.lock, for the container image (stdlib only).

``requirements.lock`` (``make lock``: ``uv export --all-groups``) pins every package of the workspace:
the services' runtime dependencies and the dev and bench groups (pytest, duckdb, splink...). The image
needs only the first. Each entry in the lock carries uv's ``# via`` annotation, i.e. the packages that
require it; an entry without one is a direct requirement of a dependency group. So the runtime set is
the least fixed point of: "required by a root, or by a package already in the set", the roots being
the workspace members (``baoxue``, ``baoxue-registry``...). The entries are copied verbatim, hashes
and markers included, so ``pip install --require-hashes`` checks them exactly as ``make install`` does.

    python lockfilter.py requirements.lock                 # runtime of the workspace members
    python lockfilter.py requirements.lock --root hatchling  # hatchling and what it needs
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

WORKSPACE_MEMBERS = (
    "baoxue",
    "baoxue-registry",
    "baoxue-enrollment",
    "baoxue-casework",
    "baoxue-notify",
)

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Entry:
    name: str
    lines: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def parse_lock(text: str) -> list[Entry]:
    """The entries of a uv-exported requirements file, each with its lines and its ``via`` set."""
    entries: list[Entry] = []
    in_via_list = False
    for line in text.splitlines():
        stripped = line.strip()
        match = _NAME.match(line)
        if match:
            entries.append(Entry(canonical(match.group(1)), [line]))
            in_via_list = False
            continue
        if not entries or not stripped:
            continue
        entry = entries[-1]
        if stripped.startswith("--hash=") or (
            entry.lines[-1].endswith("\\") and not stripped.startswith("#")
        ):
            entry.lines.append(line)
        elif stripped == "# via":
            in_via_list = True
        elif stripped.startswith("# via "):
            entry.via.add(canonical(stripped.removeprefix("# via ").strip()))
            in_via_list = False
        elif in_via_list and stripped.startswith("#   "):
            entry.via.add(canonical(stripped.removeprefix("#").strip()))
    return entries


def select(entries: list[Entry], roots: tuple[str, ...]) -> list[Entry]:
    """The entries needed by ``roots``: the roots themselves, and everything required by the set."""
    wanted = {canonical(r) for r in roots}
    chosen = {e.name for e in entries if e.name in wanted}
    changed = True
    while changed:
        changed = False
        for entry in entries:
            if entry.name not in chosen and entry.via & (chosen | wanted):
                chosen.add(entry.name)
                changed = True
    return [e for e in entries if e.name in chosen]


def render(entries: list[Entry]) -> str:
    return "".join("\n".join(e.lines) + "\n" for e in entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--root", action="append", help="start from these packages (default: the workspace)")
    args = parser.parse_args(argv)
    entries = parse_lock(args.lock.read_text(encoding="utf-8"))
    roots = tuple(args.root or WORKSPACE_MEMBERS)
    chosen = select(entries, roots)
    missing = [
        r for r in roots if canonical(r) not in {e.name for e in entries} and r not in WORKSPACE_MEMBERS
    ]
    if missing or not chosen:
        print(f"lockfilter: nothing selected for {', '.join(missing or roots)}", file=sys.stderr)
        return 1
    sys.stdout.write(render(chosen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
