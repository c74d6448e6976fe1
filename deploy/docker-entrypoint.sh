#!/bin/sh
# Container entrypoint of proxy-stone-sd.
#
#   (no arguments)            -> proxy-stone-sd agent
#   --log-level debug ...     -> proxy-stone-sd agent --log-level debug ...
#   status|services|doctor... -> proxy-stone-sd status|services|doctor ... (any word that is not a program)
#   sh, node, ...             -> run as is
#
# `exec` replaces this shell, so node is the process that receives SIGTERM from `docker stop`
# (forwarded by tini, PID 1 in the image) and drains, resigns and revokes its lease before exiting.
set -eu

if [ "$#" -eq 0 ]; then
  set -- proxy-stone-sd agent
elif [ "${1#-}" != "$1" ]; then
  set -- proxy-stone-sd agent "$@"
elif ! command -v "$1" >/dev/null 2>&1; then
  set -- proxy-stone-sd "$@"
fi

exec "$@"
