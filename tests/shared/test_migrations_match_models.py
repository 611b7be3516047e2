"""Each service's Alembic head creates exactly the schema its models declare: a model change without
its revision (or a revision without the model) is a difference here, on the database in use."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from baoxue.catalog import load_service
from baoxue.db import sync_url
from baoxue.migrations import include_object_for, upgrade


def _significant(diff: object) -> bool:
    # Column comments are documentation; SQLite does not store them.
    kind = diff[0] if isinstance(diff, tuple) else diff[0][0]  # type: ignore[index]
    return kind not in ("modify_comment",)


@pytest.mark.parametrize("name", ["registry", "enrollment", "casework", "notify"])
def test_migrations_at_head_match_the_models(name, baoxue_infra):
    spec = load_service(name)
    url = baoxue_infra.database_url(f"drift_{name}")
    upgrade(spec.migrations_dir, url)
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            if name == "enrollment" and connection.dialect.name == "postgresql":
                # A campaign's results partition, as a verification run creates one: not a model.
                connection.exec_driver_sql(
                    "CREATE TABLE verification_results_drift_1 PARTITION OF verification_results"
                    " FOR VALUES IN ('drift')"
                )
                connection.commit()
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object_for(connection)}
            )
            diffs = [d for d in compare_metadata(context, spec.metadata) if _significant(d)]
    finally:
        engine.dispose()
    assert diffs == [], f"{name}: models and migrations differ: {diffs}"
