#!/usr/bin/env bash
# Bring a fresh machine to a state where the lab runs and its tests pass.
# Idempotent: every step checks before it installs, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the real browser for end-to-end tests (Playwright drives it, no download).
# postgresql: the suite runs a second time on it.
APT_PACKAGES=(redis-server chromium postgresql)
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
stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing Python packages into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c constraints.txt -e ".[dev]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
# The Docker Compose CLI, built from its Go pin: the tests validate docker-compose.yml.
command -v go >/dev/null && bash scripts/ensure-compose.sh
mkdir -p "${LABAPP_VAR_DIR:-var}"
"$VENV/bin/python" manage.py migrate --noinput -v 0
"$VENV/bin/python" manage.py collectstatic --noinput -v 0
