#!/usr/bin/env bash
# Runs a command with Node.js 24 LTS first on PATH: `scripts/with-node24.sh npm test`.
# Node 20, which the machines have, reached its end of life in April 2026; operators run 24, so CI
# runs the suite on both. The binary comes from the npm package node-linux-<arch>@24 (a tarball
# with bin/node and no install scripts), fetched once with npm into a cache dir outside the repo.
set -euo pipefail
major=24
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "with-node24: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
cache="${PROXY_STONE_SD_NODE24_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/proxy-stone-sd/node-linux-$arch-$major}"
if [ ! -x "$cache/bin/node" ] || [ "$("$cache/bin/node" -p 'process.versions.node.split(".")[0]')" != "$major" ]; then
  rm -rf "$cache" && mkdir -p "$cache"
  tarball=$(cd "$cache" && npm pack --silent "node-linux-$arch@$major" | tail -n 1)
  tar -xzf "$cache/$tarball" -C "$cache" --strip-components=1
  rm -f "$cache/$tarball"
fi
echo "with-node24: node $("$cache/bin/node" --version) ($cache/bin/node)" >&2
PATH="$cache/bin:$PATH" exec "$@"
