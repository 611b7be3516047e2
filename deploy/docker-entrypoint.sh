#!/bin/sh
# Entry point of the Baoxue image. BAOXUE_SERVICE names the service; the first argument the action:
#   serve    run the service's API, relay and consumers (default)
#   migrate  apply the service's Alembic migrations to its database, then exit
#   anything else is executed as given (e.g. `baoxue deadletters list casework`).
set -eu
action="${1:-serve}"
case "$action" in
serve | migrate)
    case "${BAOXUE_SERVICE:-}" in
    registry | enrollment | casework | notify) ;;
    *)
        echo "BAOXUE_SERVICE must be one of registry, enrollment, casework, notify" >&2
        exit 64
        ;;
    esac
    ;;
esac
case "$action" in
serve) exec baoxue serve "$BAOXUE_SERVICE" ;;
migrate) exec baoxue migrate --service "$BAOXUE_SERVICE" ;;
*) exec "$@" ;;
esac
