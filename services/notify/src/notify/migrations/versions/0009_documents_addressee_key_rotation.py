"""documents: the immutability trigger lets key rotation re-encrypt the addressee

Issued documents stay immutable, with one exception: an UPDATE that changes nothing but
``addressee_enc``, from a token under one key (or algorithm) to a token under another — what
``baoxue pii rotate`` does. Any other UPDATE is refused as before. The database cannot check that the
new token holds the same name (it cannot decrypt); the rotation re-encrypts the decrypted value with
the same associated data, and ``content_sha256`` still covers the rendered text.

SQLite compares the columns of ``documents`` as they are at this revision: a later revision that adds
a column must add it to the trigger too (PostgreSQL compares whole rows).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IMMUTABLE = "documents are immutable; issue a correction"
_COLUMNS = (
    "id", "kind", "issuing_org", "year", "seq", "version", "number", "supersedes_id", "correction_reason",
    "recipient_org", "case_id", "escalation_id", "title", "content", "fields", "content_sha256",
    "issued_by", "issued_on", "created_at",
)  # every column but addressee_enc


def _sqlite_key_prefix(token: str) -> str:
    # "<alg>.<key id>." : the two-character algorithm tag, its dot, the key id up to the next dot.
    return f"substr({token}, 1, 3 + instr(substr({token}, 4), '.'))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF OLD.addressee_enc IS NOT NULL AND NEW.addressee_enc IS NOT NULL "
            "AND split_part(NEW.addressee_enc, '.', 1) || '.' || split_part(NEW.addressee_enc, '.', 2) "
            "<> split_part(OLD.addressee_enc, '.', 1) || '.' || split_part(OLD.addressee_enc, '.', 2) "
            "AND to_jsonb(NEW) - 'addressee_enc' = to_jsonb(OLD) - 'addressee_enc' THEN RETURN NEW; END IF; "
            f"RAISE EXCEPTION '{_IMMUTABLE}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
    else:
        unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _COLUMNS)
        rotation = (
            "OLD.addressee_enc IS NOT NULL AND NEW.addressee_enc IS NOT NULL AND "
            f"{_sqlite_key_prefix('NEW.addressee_enc')} <> {_sqlite_key_prefix('OLD.addressee_enc')} AND "
            + unchanged
        )
        op.execute("DROP TRIGGER IF EXISTS documents_no_update")
        op.execute(
            "CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents "
            f"WHEN NOT ({rotation}) BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{_IMMUTABLE}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS documents_no_update")
        op.execute(
            "CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents "
            f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
        )
