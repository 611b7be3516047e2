#!/bin/bash
# Runs once, when the PostgreSQL container initialises an empty data volume
# (mounted into /docker-entrypoint-initdb.d by compose.yaml).
# One database per service, owned by a login role of the same name with its own password, so that no
# service can read another's tables. Passwords come from the environment (deploy/.env):
# REGISTRY_DB_PASSWORD, ENROLLMENT_DB_PASSWORD, CASEWORK_DB_PASSWORD, NOTIFY_DB_PASSWORD.
set -euo pipefail

for service in registry enrollment casework notify; do
    var="${service^^}_DB_PASSWORD"
    password="${!var:-}"
    if [[ -z "$password" ]]; then
        echo "init-databases: $var is not set" >&2
        exit 1
    fi
    # psql variables (:'name', :"name") quote the values; nothing is spliced into SQL text.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$service" -v password="$password" -v db="baoxue_$service" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
\connect :"db"
ALTER SCHEMA public OWNER TO :"role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
    echo "init-databases: database baoxue_$service for role $service"
done
