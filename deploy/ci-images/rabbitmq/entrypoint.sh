#!/bin/sh
# RabbitMQ 3.10 imports one definitions file, not a folder: merge /etc/rabbitmq/definitions.d/
# *.json in name order (lists such as users, queues, exchanges are concatenated; for other keys
# the first file wins) into one file, and point the import at it, after the mounted conf.d files.
set -eu
if [ "${1:-}" = rabbitmq-server ]; then
    merged=/var/lib/rabbitmq/definitions.merged.json
    files="$(ls /etc/rabbitmq/definitions.d/*.json 2>/dev/null || true)"
    if [ -n "$files" ]; then
        # shellcheck disable=SC2086
        jq -s 'reduce .[] as $d ({}; reduce ($d | keys[]) as $k (.;
            .[$k] = (if ($d[$k] | type) == "array" then ((.[$k] // []) + $d[$k])
                     else (.[$k] // $d[$k]) end)))' $files > "$merged"
        chown rabbitmq:rabbitmq "$merged"
        printf 'definitions.import_backend = local_filesystem\ndefinitions.local.path = %s\n' \
            "$merged" > /etc/rabbitmq/conf.d/99-merged-definitions.conf
    fi
fi
exec "$@"
