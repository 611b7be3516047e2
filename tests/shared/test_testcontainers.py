"""The customer's third way to get test infrastructure: testcontainers, where a Docker engine runs."""

import pytest

from baoxue.testing.infrastructure import docker_available


@pytest.mark.docker
def test_testcontainers_provide_postgres_and_nats():
    if not docker_available():
        pytest.skip(
            "no Docker engine reachable: the testcontainers path (PostgreSQL + NATS containers) is not "
            "exercised here; this run used TEST_DATABASE_URL/TEST_NATS_URL or the embedded SQLite + nats-server"
        )
    import contextlib

    import psycopg

    from baoxue.testing.infrastructure import _start_containers

    with contextlib.ExitStack() as stack:
        pg_url, nats_url = _start_containers(stack)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert nats_url.startswith("nats://")
