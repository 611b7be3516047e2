"""Developer commands: ``python -m baoxue.devtools makemigration <service> "message"``.

Autogenerates a new Alembic revision for a service by comparing its metadata with a scratch SQLite
database at the current head. Review the file before committing it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from baoxue.catalog import load_service
from baoxue.migrations import alembic_config, upgrade


def makemigration(service: str, message: str) -> None:
    spec = load_service(service)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        upgrade(spec.migrations_dir, url)
        versions = sorted((spec.migrations_dir / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
        next_id = f"{len(versions) + 1:04d}"
        command.revision(
            alembic_config(spec.migrations_dir, url), message=message, autogenerate=True, rev_id=next_id
        )


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "makemigration":
        sys.exit('usage: python -m baoxue.devtools makemigration <service> "message"')
    makemigration(sys.argv[2], sys.argv[3])
