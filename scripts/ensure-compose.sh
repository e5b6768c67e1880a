#!/usr/bin/env bash
# Build the Docker Compose CLI plugin from its pinned Go module (gopins/compose),
# once, into a cache keyed by the pins, and install it for the docker client.
# Only the client is needed: the tests validate the compose file; no engine runs.
set -euo pipefail
cd "$(dirname "$0")/.."
key=$(cat gopins/compose/go.mod gopins/compose/go.sum | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/labapp/gopins/compose-$key"
plugin_dir="$HOME/.docker/cli-plugins"
if [ ! -x "$cache/docker-compose" ]; then
  command -v go >/dev/null || { echo "[compose] Go is needed to build docker compose" >&2; exit 1; }
  echo "[compose] building docker compose from gopins/compose (first time only; minutes)"
  mkdir -p "$cache"
  (cd gopins/compose && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
     -o "$cache/docker-compose.partial" github.com/docker/compose/v5/cmd) &
  build=$!
  started=$SECONDS
  # A line every 20 s while it builds, with the time it has taken.
  while kill -0 "$build" 2>/dev/null; do
    for _ in $(seq 20); do kill -0 "$build" 2>/dev/null || break; sleep 1; done
    if kill -0 "$build" 2>/dev/null; then
      took=$((SECONDS - started))
      echo "[compose] still building docker compose… $((took / 60))m$(printf %02d $((took % 60)))s"
    fi
  done
  wait "$build"  # its exit status: a failed build stops here (set -e)
  mv "$cache/docker-compose.partial" "$cache/docker-compose"
fi
mkdir -p "$plugin_dir"
ln -sf "$cache/docker-compose" "$plugin_dir/docker-compose"
