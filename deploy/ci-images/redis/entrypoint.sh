#!/bin/sh
# `redis-server ARGS...` as the official image runs it: protected mode off; the command line's
# own options (e.g. --appendonly yes) come after and win.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    exec redis-server --protected-mode no "$@"
fi
exec "$@"
