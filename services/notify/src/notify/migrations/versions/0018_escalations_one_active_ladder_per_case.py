"""escalations: at most one active ladder per case, kept by the database (a partial unique index on
``escalations(case_id) WHERE state = 'active'``, both engines)

The service has always meant one active ladder per case (``escalation.service.start_episode`` resolves an
earlier episode's ladder before starting its own), and since the case lock
(``escalation.repository.lock_case``) it applies a case's escalation events one at a time. Before that
lock, two replicas applying two events of one case at the same moment could each start a ladder: such a
case has several active ladders, which this index refuses, so the upgrade first resolves all but one.

Upgrade, set-based (three statements on the ladders ranked per case, then the index):

* Kept, per case with several active ladders: the one serving the highest episode
  (``episode_sequence``; none, from a ladder started before migration 0015, counts lowest), then the
  latest created (then the highest id, so that the choice is always one).
* The others are resolved as ``start_episode`` resolves an earlier episode's ladder that a later one
  overtook (``service._stop``): their open level deadlines (``deadlines`` of kind ``escalation_<level>``,
  subject ``<ladder id>:<level>``) are cancelled on the day of the upgrade, an ``escalation_steps`` row
  of kind ``resolved`` at the ladder's level is added (actor ``notify:ladder``, a note naming this
  migration and the ladder kept), and the ladder becomes ``resolved`` on that day at its next version.
  Their resolution is ``superseded``, not one of the resolutions of an episode's end (``returned``,
  ``placed``, ``closed``, ``withdrawn``): nothing ended them, another ladder of the case took over, and
  ``start_episode``'s ``earlier_ended_as`` (what must have ended the earlier episode) cannot be told
  here. The case's episode end (``escalation_episode_ends``) is not touched: no episode ended.
  Day of the upgrade: today in China (``baoxue.workdays.today_in_china``).

Events: none. No ``EscalationResolved`` is written to the outbox, unlike registry migration 0008 (which
writes what the service itself would announce for the change). Casework keeps, per case, the ladder it
follows and its episode, and applies an ``EscalationResolved`` whose episode is not lower than the case's
(or has none) as the end of the case's escalation: an escalated case moves to returned, placed or back to
persuading (``casework.cases.handlers.on_escalation_resolved``). For a ladder resolved here whose episode
is lower than the one kept, casework ignores it once it has heard the kept ladder's events (it follows
the higher episode); for one of the same episode, or of none (two ladders of the same event, or
from before 0015), casework may be following it, and would move the case out of ``escalated`` while the
ladder kept here is still active and climbing: a wrong state, not a correction. The contract's
``resolution`` has no ``superseded`` either. Without the event, casework's case stays escalated (it is),
and a case following a ladder resolved here names that ladder's id and level until the kept ladder's
next event (its next level or its end, which casework follows: another escalation id of the same or a
later episode is the ladder it follows).

Offline (``alembic upgrade --sql``): the same statements, with the day of generating the SQL.

Downgrade: the index is dropped. The ladders resolved by the upgrade stay resolved (making them active
again would bring the duplicates back; nothing needs them).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from baoxue.db import UTCDateTime, utcnow
from baoxue.workdays import today_in_china

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_escalations_active_case"
ACTIVE = sa.text("state = 'active'")
RESOLUTION = "superseded"
ACTOR = "notify:ladder"  # the ladder's own actor (escalation.service.SYSTEM_ACTOR)

escalations = sa.table(
    "escalations",
    sa.column("id", sa.String),
    sa.column("case_id", sa.String),
    sa.column("level", sa.String),
    sa.column("state", sa.String),
    sa.column("resolution", sa.String),
    sa.column("resolved_on", sa.Date),
    sa.column("episode_sequence", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
steps = sa.table(
    "escalation_steps",
    sa.column("escalation_id", sa.String),
    sa.column("level", sa.String),
    sa.column("kind", sa.String),
    sa.column("trigger", sa.String),
    sa.column("on", sa.Date),
    sa.column("actor", sa.String),
    sa.column("note", sa.String),
    sa.column("created_at", UTCDateTime()),
)
deadlines = sa.table(
    "deadlines",
    sa.column("kind", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("status", sa.String),
    sa.column("closed_on", sa.Date),
)


def _superseded() -> sa.Subquery:
    """The active ladders to resolve: every one but the first of its case, ranked by the episode it
    serves (none lowest), then the latest created, then the highest id; with the id of the one kept."""
    e = escalations.c
    window = {
        "partition_by": e.case_id,
        "order_by": (sa.func.coalesce(e.episode_sequence, -1).desc(), e.created_at.desc(), e.id.desc()),
    }
    ranked = (
        sa.select(
            e.id,
            e.level,
            sa.func.row_number().over(**window).label("rank"),
            sa.func.first_value(e.id).over(**window).label("kept"),
        )
        .where(e.state == "active")
        .subquery("ranked")
    )
    rest = sa.select(ranked.c.id, ranked.c.level, ranked.c.kept).where(ranked.c.rank > 1)
    return rest.subquery("superseded")


def upgrade() -> None:
    today, now = today_in_china(), utcnow()
    on = sa.literal(today, sa.Date)
    gone = _superseded()
    note = sa.literal(
        "resolved by notify migration 0018 (one active ladder per case): the case had several; "
        "the one kept is ",
        sa.String,
    )
    op.execute(
        steps.insert().from_select(
            ["escalation_id", "level", "kind", "trigger", "on", "actor", "note", "created_at"],
            sa.select(
                gone.c.id,
                gone.c.level,
                sa.literal("resolved", sa.String),
                sa.literal(RESOLUTION, sa.String),
                on,
                sa.literal(ACTOR, sa.String),
                note + gone.c.kept,
                sa.literal(now, UTCDateTime()),
            ),
        )
    )
    gone = _superseded()
    prefix = gone.c.id + sa.literal(":", sa.String)
    op.execute(
        deadlines.update()
        .where(
            deadlines.c.status == "open",
            deadlines.c.kind.startswith("escalation_", autoescape=True),
            sa.exists().where(sa.func.substr(deadlines.c.subject_id, 1, sa.func.length(prefix)) == prefix),
        )
        .values(status="cancelled", closed_on=today)
    )
    gone = _superseded()
    op.execute(
        escalations.update()
        .where(escalations.c.id.in_(sa.select(gone.c.id)))
        .values(
            state="resolved",
            resolution=RESOLUTION,
            resolved_on=today,
            version=escalations.c.version + 1,
            updated_at=now,
        )
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index(INDEX, ["case_id"], unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(INDEX, sqlite_where=ACTIVE, postgresql_where=ACTIVE)
