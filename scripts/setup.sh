#!/usr/bin/env bash
# Bring a fresh machine to a state where the lab runs (`make up`), or, with --test, where
# its tests pass too (`make test`).
#   run profile:  redis-server, .venv with the app's pinned packages, the database migrated.
#   --test:       also chromium (the browser tests), postgresql (the suite's second run),
#                 the dev packages (pytest, ruff, mypy, playwright) and the compose CLI
#                 (built from gopins/compose: the tests validate docker-compose.yml).
# Idempotent: every step checks before it installs, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=run
case "${1:-}" in
  --test) profile=test ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

APT_PACKAGES=(redis-server)
# chromium: the real browser for end-to-end tests (Playwright drives it, no download).
# postgresql: the suite runs a second time on it.
[ "$profile" = test ] && APT_PACKAGES+=(chromium postgresql)
PYTHON=${PYTHON:-python3.11}
VENV=.venv

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "[setup] apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "[setup] warning: no Go on PATH; the local control plane cannot be built (needs $(sed -n 's/^go //p' gopins/kube/go.mod))." >&2
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pins=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
# The test profile's packages include the run profile's: either stamp satisfies `run`.
if [ -f "$VENV/.installed-test-$pins" ] || { [ "$profile" = run ] && [ -f "$VENV/.installed-run-$pins" ]; }; then
  :
else
  target="."; [ "$profile" = test ] && target=".[dev]"
  echo "[setup] installing Python packages ($profile profile) into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c constraints.txt -e "$target"
  rm -f "$VENV"/.installed-*
  touch "$VENV/.installed-$profile-$pins"
fi
if [ "$profile" = test ]; then
  # The Docker Compose CLI, built from its Go pin: the tests validate docker-compose.yml.
  if command -v go >/dev/null; then bash scripts/ensure-compose.sh; fi
fi
mkdir -p "${LABAPP_VAR_DIR:-var}"
"$VENV/bin/python" manage.py migrate --noinput -v 0
"$VENV/bin/python" manage.py collectstatic --noinput -v 0
