#!/usr/bin/env bash
# Mynah's installer. One code path for every set-up:
#   installer/install.sh --dev          set up this checkout: .venv, dependencies, embedded models, var/mynah.toml
#   installer/install.sh --dev --up     ... then start the appliance (the README's first command)
#   installer/install.sh --dev --test   ... then run the test suite (the README's second command; CI runs it)
#   installer/install.sh --system       install as a service: a user, /opt/mynah, /etc/mynah, a systemd unit
#   installer/install.sh --container    --system inside an image build (docker/Dockerfile)
#   installer/install.sh uninstall      remove what --system installed (data and configuration kept unless --purge)
# It is idempotent: a second run only checks what the first one did.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  cat <<'TXT'
Options:
  --dev        install into this checkout
  --up         start the appliance when set up (mynah up)
  --test       run the tests when set up (pytest), printing the summary
  --python P   the Python 3.11+ interpreter to build the virtual environment with (default: python3.11 or python3)
  -h, --help   this text
Service install (--system) and uninstall:
  --prefix DIR     install under DIR instead of / (no user, no systemctl; runnable by hand, e.g. for tests)
  --user NAME      the service user (default mynah; created when installing to / as root)
  --dry-run        print every step, change nothing
  --yes            do not ask before installing to / or purging
  --container      --system for an image build: implies --yes, adds the gpu extra (NVML), and skips the
                   systemd unit, the embedded models and the certificates (docker/entrypoint.sh fetches the
                   models into the models volume and the gateway makes the certificates at first start)
  --purge          uninstall: also remove data, models, logs, the configuration and the service user
  --models-from DIR          seed the model store from DIR (e.g. var/models); hashes are still checked
  --site-packages-from VENV  take the dependencies from VENV instead of downloading them (tests, offline)
Layout (under the prefix): opt/mynah/{app,venv}, etc/mynah/{mynah.toml,install-manifest},
  var/lib/mynah/{data,models}, var/log/mynah, run/mynah, etc/systemd/system/mynah.service
TXT
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE="" ACTION="" PYTHON=""
PREFIX=/ DRY=0 YES=0 PURGE=0 SERVICE_USER=mynah MODELS_FROM="" SHARED_VENV="" CONTAINER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) MODE=dev ;;
    --system) MODE=system ;;
    --container) MODE=system CONTAINER=1 YES=1 ;;
    uninstall) MODE=uninstall ;;
    --up) ACTION=up ;;
    --test) ACTION="test" ;;
    --python) PYTHON=${2:?--python needs a path}; shift ;;
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift ;;
    --user) SERVICE_USER=${2:?--user needs a name}; shift ;;
    --dry-run) DRY=1 ;;
    --yes) YES=1 ;;
    --purge) PURGE=1 ;;
    --models-from) MODELS_FROM=${2:?--models-from needs a folder}; shift ;;
    --site-packages-from) SHARED_VENV=${2:?--site-packages-from needs a virtual environment}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ -n "$MODE" ] || { echo "install.sh: say --dev (set up this checkout), --system or uninstall" >&2; usage >&2; exit 2; }

step() { printf '\n==> %s\n' "$*"; }
VENV="$ROOT/.venv"
VAR="$ROOT/var"
LLAMA_VERSION=0.3.36
# The wheel is built once per version and flags and kept outside the checkout, so a fresh clone on the
# same machine does not spend minutes compiling llama.cpp again.
WHEELS="${MYNAH_WHEEL_CACHE:-$HOME/.cache/mynah/wheels}/llama-cpp-python-$LLAMA_VERSION-portable"
# The log pip's chatter goes to (shown only when something fails), and the extras to install.
INSTALL_LOG="$VAR/install.log"
EXTRAS="embedded"
[ "$ACTION" = test ] && EXTRAS="embedded,dev"
# The image is the GPU stack's: NVML reads the card's memory for the residency planner.
[ "$CONTAINER" = 1 ] && EXTRAS="$EXTRAS,gpu"
# A box with NVIDIA's driver gets NVML too: without it the residency planner sees a GPU budget of 0 and refuses
# every session of a GPU profile (docs/deployment.md). nvidia-ml-py is pure Python, ~50 KB.
[ "$CONTAINER" = 0 ] && command -v nvidia-smi >/dev/null 2>&1 && EXTRAS="$EXTRAS,gpu"

system_packages() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v g++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  # pyworld (the approximated voice's vocoder) is built from source: it needs Python's headers.
  "$PYTHON" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
  if [ "$ACTION" = test ]; then
    # The tests synthesize their own speech with these voices, and verify the systemd unit.
    command -v espeak-ng >/dev/null || missing+=(espeak-ng)
    command -v text2wave >/dev/null || missing+=(festival)
    [ -d /usr/share/festival/voices/english/kal_diphone ] || missing+=(festvox-kallpc16k)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    # The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
    command -v chromium >/dev/null || missing+=(chromium)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$DRY" = 1 ]; then
    printf '      would install system packages: %s\n' "${missing[*]}"; return 0
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "install.sh: please install ${missing[*]} (to build llama.cpp and pyworld, and for the tests' speech)" >&2; exit 1
  fi
  step "installing system packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

# The web UI is built with Vite, which needs Node.js 20.19+ (Debian 12's own nodejs is 18: use NodeSource's).
node_check() {
  local version
  version=$(node --version 2>/dev/null | tr -d v || true)
  if [ -z "$version" ] || ! printf '%s\n' "$version" | awk -F. '{ exit !($1 > 20 || ($1 == 20 && $2 >= 19)) }'; then
    echo "install.sh: the web UI needs Node.js 20.19 or newer with npm (found: ${version:-none});" \
      "install it from https://nodejs.org or NodeSource's apt repository, then run this again" >&2
    exit 1
  fi
}

webui() {
  step "building the web UI (webui/: npm ci, then vite build into webui/dist)"
  [ "$DRY" = 1 ] && return 0
  local log="$VAR/webui-build.log"
  mkdir -p "$VAR"
  if ! (cd "$ROOT/webui" && npm ci --no-audit --no-fund >"$log" 2>&1 && npm run build >>"$log" 2>&1); then
    tail -n 40 "$log" >&2
    echo "install.sh: the web UI did not build (full log: $log)" >&2
    exit 1
  fi
}

pick_python() {
  if [ -z "$PYTHON" ]; then
    PYTHON=$(command -v python3.11 || command -v python3 || true)
  fi
  [ -n "$PYTHON" ] || { echo "install.sh: no python3 found; install Python 3.11" >&2; exit 1; }
  "$PYTHON" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' || {
    echo "install.sh: $PYTHON is $("$PYTHON" --version 2>&1); Mynah needs Python 3.11 to 3.13" >&2; exit 1; }
}

make_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    step "creating the virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools 2>&1 | grep -v '^WARNING: Location' || true
}

llama_wheel() {
  if ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    return 0
  fi
  step "building llama.cpp $LLAMA_VERSION (portable, once per machine: about 6-15 minutes on 2 cores)"
  mkdir -p "$WHEELS"
  # GGML_NATIVE=OFF: a native build used instructions (AMX) that some VMs forbid, and crashed with SIGILL.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/python" -m pip wheel --no-deps --no-cache-dir \
    -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
}

# pip_install SOURCE [pip options...]: Mynah from SOURCE (editable) and its dependencies into $VENV.
pip_install() {
  local source=$1; shift
  mkdir -p "$(dirname "$INSTALL_LOG")"
  # pip's and setuptools' chatter goes to a log; it is shown only when something fails.
  if ! "$VENV/bin/python" -m pip install "$@" -e "${source}[$EXTRAS]" >"$INSTALL_LOG" 2>&1 \
     || ! "$VENV/bin/python" -c 'import llama_cpp, zmq, fastapi, supervisor' >>"$INSTALL_LOG" 2>&1; then
    tail -n 40 "$INSTALL_LOG" >&2
    echo "install.sh: the Python dependencies did not install (full log: $INSTALL_LOG)" >&2
    exit 1
  fi
}

python_packages() {
  step "installing Mynah and its Python dependencies"
  pip_install "$ROOT" --find-links "$WHEELS"
}

configuration() {
  mkdir -p "$VAR"
  if [ ! -f "$VAR/mynah.toml" ]; then
    step "writing $VAR/mynah.toml"
    cp "$ROOT/installer/mynah.dev.toml" "$VAR/mynah.toml"
  fi
}

# fetch_models CONFIG: the embedded models, pinned by sha256 (already there: only verified).
fetch_models() {
  "$VENV/bin/mynah" --config "$1" models fetch embedded
}

models() {
  step "fetching the embedded models (pinned by sha256)"
  fetch_models "$VAR/mynah.toml"
}

if [ "$MODE" = dev ]; then
  pick_python
  system_packages
  make_venv
  llama_wheel
  python_packages
  configuration
  models
  node_check
  webui

  case "$ACTION" in
    up)
      if [ ! -s "$VAR/local-token" ]; then
        step "pairing this box as a device (its token in var/local-token, for curl and scripts)"
        "$VENV/bin/mynah" --config "$VAR/mynah.toml" devices add "this box" --save "$VAR/local-token" >/dev/null
      fi
      step "starting Mynah"
      exec "$VENV/bin/mynah" --config "$VAR/mynah.toml" up ;;
    test)
      step "running the tests"
      cd "$ROOT"
      exec "$VENV/bin/python" -m pytest -ra ;;
    *)
      printf '\nSet up. Start it with: .venv/bin/mynah --config var/mynah.toml up\n' ;;
  esac
  exit 0
fi

# shellcheck source=installer/system.sh
. "$ROOT/installer/system.sh"
