#!/bin/sh
# payengine image entrypoint: the first argument names the process role, the rest goes to its command.
#
#   api          payengine serve        HTTP API (PAYENGINE_WORKERS processes on PAYENGINE_PORT)
#   flush        payengine flush        hot-account flushers + recovery sweep
#   gateway      payengine gateway      voucher worker and janitor
#   webhooks     payengine webhooks     webhook delivery
#   migrate      payengine migrate      apply migrations, then exit (a one-shot job)
#   channel-sim  payengine channel-sim  a channel simulator (listens on 0.0.0.0 unless --host is given)
#   locust       locust -f loadtests/locustfile.py   load generator (the image's `locust` target)
#   payengine    payengine ...          any other subcommand (day-end, buffer status, settings, ...)
#   healthcheck  GET /healthz (or the URL given) - the image's HEALTHCHECK
#
# The image holds no embedded servers: every role that touches the ledger needs PAYENGINE_DATABASE_URL
# and PAYENGINE_REDIS_URL and refuses to start without them (payengine itself would try to start an
# embedded PostgreSQL/Redis in the container, which is never what a deployment wants).
set -eu

PAYENGINE="${PAYENGINE_BIN:-payengine}"

usage() {
    echo "usage: entrypoint.sh {api|flush|gateway|webhooks|migrate|channel-sim|locust|payengine|healthcheck} [args...]" >&2
}

require_servers() {
    missing=""
    [ -n "${PAYENGINE_DATABASE_URL:-}" ] || missing="$missing PAYENGINE_DATABASE_URL"
    [ -n "${PAYENGINE_REDIS_URL:-}" ] || missing="$missing PAYENGINE_REDIS_URL"
    if [ -n "$missing" ]; then
        echo "payengine: role '$1' refuses to start: missing$missing." >&2
        echo "payengine: this image has no embedded servers; point it at PostgreSQL and Redis, e.g." >&2
        echo "  PAYENGINE_DATABASE_URL=postgresql://user:pass@postgres:5432/payengine" >&2
        echo "  PAYENGINE_REDIS_URL=redis://redis:6379/0   (a cluster: redis+cluster://node:6379)" >&2
        exit 64
    fi
}

if [ "$#" -eq 0 ]; then
    usage
    exit 64
fi
role="$1"
shift

case "$role" in
    api)
        require_servers "$role"
        exec "$PAYENGINE" serve "$@"
        ;;
    flush | gateway | webhooks | migrate)
        require_servers "$role"
        exec "$PAYENGINE" "$role" "$@"
        ;;
    payengine)
        require_servers "$role"
        exec "$PAYENGINE" "$@"
        ;;
    channel-sim)
        exec "$PAYENGINE" channel-sim --host 0.0.0.0 "$@"
        ;;
    locust)
        locustfile="${LOCUSTFILE:-$(python -c 'import importlib.util as u; print(u.find_spec("loadtests").submodule_search_locations[0])')/locustfile.py}"
        exec "${LOCUST_BIN:-locust}" -f "$locustfile" "$@"
        ;;
    healthcheck)
        exec python "$(dirname "$0")/healthcheck.py" "$@"
        ;;
    -h | --help | help)
        usage
        exit 0
        ;;
    *)
        echo "payengine: unknown role '$role'" >&2
        usage
        exit 64
        ;;
esac
