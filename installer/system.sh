# Mynah's service install and uninstall: sourced by installer/install.sh (--system, uninstall), whose
# functions it shares with the developer set-up (pick_python, system_packages, make_venv, llama_wheel,
# pip_install, fetch_models). Every step says what it did: created, updated, unchanged or skipped; under
# --dry-run, what it would do, and nothing changes. What a step creates is recorded in the install manifest,
# so uninstall removes exactly that.
# shellcheck shell=bash

case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
case "$PREFIX" in *[[:space:]\"\'\\%\$\;]*)
  echo "install.sh: --prefix must not hold spaces, quotes, '%', '\$' or ';' (systemd units cannot say it)" >&2; exit 2 ;;
esac
P=$(realpath -m "$PREFIX"); [ "$P" = / ] && P=""
OPT="$P/opt/mynah" APP="$P/opt/mynah/app" SVENV="$P/opt/mynah/venv"
ETC="$P/etc/mynah" CONFIG="$P/etc/mynah/mynah.toml" MANIFEST="$P/etc/mynah/install-manifest"
STATE="$P/var/lib/mynah" DATA="$P/var/lib/mynah/data" MODELS="$P/var/lib/mynah/models"
LOGDIR="$P/var/log/mynah" RUNDIR="$P/run/mynah"
UNIT_NAME=mynah.service UNIT="$P/etc/systemd/system/mynah.service"
IS_ROOT=0; [ "$(id -u)" -eq 0 ] && IS_ROOT=1
# The service user and systemctl belong to the real system: only an install to / as root touches them.
SYSTEM_WIDE=0; [ -z "$P" ] && [ "$IS_ROOT" = 1 ] && SYSTEM_WIDE=1
HAS_SYSTEMD=0; [ -d /run/systemd/system ] && command -v systemctl >/dev/null && HAS_SYSTEMD=1
SERVICE_GROUP=$SERVICE_USER
CHANGED=0  # code, packages or unit changed: a running service is restarted
ENTRIES=()  # the manifest: "KIND PATH" in creation order (kinds: dir tree file data conf user enabled)
STAGING=""
PLANNED_DIRS=""  # under --dry-run: the folders a real run would have made by now
trap '[ -z "$STAGING" ] || rm -rf "$STAGING"' EXIT

# say STATE WHAT: one line per step (under --dry-run, "would ...").
say() {
  local state=$1; shift
  if [ "$DRY" = 1 ]; then
    case "$state" in created) state="would create" ;; updated) state="would update" ;;
      removed) state="would remove" ;; ran) state="would run" ;; esac
  fi
  printf '  %-14s %s\n' "$state" "$*"
}
# act COMMAND...: run it, or under --dry-run only print it.
act() { if [ "$DRY" = 1 ]; then printf '      would run: %s\n' "$*"; else "$@"; fi; }
record() {
  local entry="$1 $2" e
  for e in ${ENTRIES[@]+"${ENTRIES[@]}"}; do [ "$e" = "$entry" ] && return 0; done
  ENTRIES+=("$entry")
}
load_manifest() {
  local line
  [ -f "$MANIFEST" ] || return 0
  while IFS= read -r line; do
    case "$line" in ''|'#'*) ;; *) ENTRIES+=("$line") ;; esac
  done <"$MANIFEST"
}
# make_dir PATH [KIND]: create PATH and the parents it lacks; false if it was there. PATH is recorded as KIND
# (Mynah's own folders are recorded even when they were there: a reinstall over kept data, then --purge);
# the parents only when made here.
make_dir() {
  local target=$1 kind=${2:-} d=$1 missing=()
  [ -z "$kind" ] || record "$kind" "$target"
  while [ ! -d "$d" ] && [[ " $PLANNED_DIRS " != *" $d "* ]]; do
    missing=("$d" ${missing[@]+"${missing[@]}"}); d=$(dirname "$d")
  done
  [ ${#missing[@]} -eq 0 ] && return 1
  for d in "${missing[@]}"; do
    if [ "$DRY" = 1 ]; then PLANNED_DIRS+=" $d"; else mkdir "$d"; fi
    [ "$d" = "$target" ] && [ -n "$kind" ] || record dir "$d"
  done
}
confirm() {
  [ "$YES" = 1 ] || [ "$DRY" = 1 ] && return 0
  if [ ! -t 0 ]; then echo "install.sh: $1: say --yes to go ahead without a terminal" >&2; exit 2; fi
  local answer; read -r -p "$1? [y/N] " answer
  case "$answer" in y|Y|yes) ;; *) echo "nothing done"; exit 1 ;; esac
}

step_user() {
  if [ "$SYSTEM_WIDE" = 0 ]; then say skipped "service user (only for an install to / as root; files stay $(id -un)'s)"; return; fi
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then say unchanged "service user $SERVICE_USER"; return; fi
  say created "service user $SERVICE_USER (system, no login, home $STATE)"
  act useradd --system --user-group --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
  record user "$SERVICE_USER"
  # CUDA's device nodes are usually world-accessible; some distributions give them to these groups instead.
  local g; for g in video render; do getent group "$g" >/dev/null && act usermod -aG "$g" "$SERVICE_USER"; done
  return 0
}

step_layout() {
  local spec made=()
  for spec in "$OPT:dir" "$ETC:dir" "$STATE:data" "$DATA:data" "$MODELS:data" "$LOGDIR:data" "$RUNDIR:tree"; do
    if make_dir "${spec%:*}" "${spec##*:}"; then made+=("${spec%:*}"); fi
  done
  if [ ${#made[@]} -eq 0 ]; then say unchanged "folders under ${P:-/}"; else say created "folders: ${made[*]}"; fi
}

# The release tree: the checkout's files as git knows them (tracked and not ignored), else all but build output.
source_files() {
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard
  else
    (cd "$ROOT" && find . \( -name .git -o -name .venv -o -name var -o -name node_modules -o -name __pycache__ \
      -o -name '*.egg-info' \) -prune -o -type f -print0 | sed -z 's|^\./||')
  fi
}
# The built web UI (webui/dist, ignored by git) goes with the code; the gateway serves it.
built_webui() { [ -d "$ROOT/webui/dist" ] && (cd "$ROOT" && find webui/dist -type f -print0); return 0; }
existing_files() { local f; while IFS= read -r -d '' f; do [ -f "$ROOT/$f" ] && printf '%s\0' "$f"; done; return 0; }
code_digest() {
  (cd "$1" && find . \( -name __pycache__ -o -name '*.egg-info' \) -prune -o -type f -print0 | LC_ALL=C sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-64)
}
install_code() { rm -rf "$APP"; mkdir -p "$APP"; cp -a "$STAGING/." "$APP/"; }

step_code() {
  STAGING=$(mktemp -d "${TMPDIR:-/tmp}/mynah-app.XXXXXX")
  if [ ! -f "$ROOT/webui/dist/index.html" ]; then node_check; webui; fi
  { source_files | existing_files; built_webui; } | tar -C "$ROOT" --null -T - -cf - | tar -C "$STAGING" -xf -
  record tree "$APP"
  if [ -d "$APP" ] && diff -rq -x __pycache__ -x '*.egg-info' "$STAGING" "$APP" >/dev/null 2>&1; then
    say unchanged "code in $APP"
  else
    if [ -d "$APP" ]; then say updated "code in $APP"; else say created "code in $APP (from $ROOT)"; fi
    act install_code
    CHANGED=1
  fi
}

shared_site_packages() { "$SHARED_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
share_packages() {
  local own; own=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  shared_site_packages >"$own/mynah-shared-dependencies.pth"
}

step_venv() {
  VENV=$SVENV INSTALL_LOG="$OPT/install.log"
  record tree "$SVENV"
  record file "$INSTALL_LOG"
  if [ -x "$SVENV/bin/python" ]; then say unchanged "virtual environment $SVENV"; return; fi
  say created "virtual environment $SVENV ($("$PYTHON" --version 2>&1))"
  if [ -n "$SHARED_VENV" ]; then
    # pip and setuptools come from VENV too (the bundled setuptools is too old for pyproject.toml's licence).
    act "$PYTHON" -m venv --without-pip "$SVENV"
    say created "dependencies shared from $(shared_site_packages) (--site-packages-from)"
    act share_packages
  elif [ "$DRY" = 1 ]; then
    act "$PYTHON" -m venv "$SVENV"
  else
    make_venv  # the developer set-up's: creates it, brings pip, wheel and setuptools up to date
  fi
}

step_packages() {
  local stamp want="extras=$EXTRAS shared=$SHARED_VENV code=none"
  [ -d "$APP" ] && want="extras=$EXTRAS shared=$SHARED_VENV code=$(code_digest "$APP")"
  stamp=$(cat "$SVENV/.mynah-installed" 2>/dev/null || true)
  if [ "$stamp" = "$want" ] && [ -x "$SVENV/bin/mynah" ]; then say unchanged "Mynah and its Python dependencies"; return; fi
  say updated "Mynah and its Python dependencies [$EXTRAS] into $SVENV (log: $INSTALL_LOG)"
  CHANGED=1
  if [ -n "$SHARED_VENV" ]; then
    act pip_install "$APP" --no-deps --no-build-isolation
  else
    system_packages
    if [ "$DRY" = 1 ]; then act llama_wheel; else llama_wheel; fi
    act pip_install "$APP" --find-links "$WHEELS"
  fi
  if [ "$DRY" = 0 ]; then printf '%s\n' "$want" >"$SVENV/.mynah-installed"; fi
}

write_config() {
  sed -e "s|@DATA_DIR@|$DATA|" -e "s|@MODELS_DIR@|$MODELS|" -e "s|@RUNTIME_DIR@|$RUNDIR|" \
      -e "s|@LOG_DIR@|$LOGDIR|" -e "s|@APP_DIR@|$APP|" "$ROOT/installer/mynah.system.toml" >"$CONFIG"
  chmod 0640 "$CONFIG"
  if [ "$SYSTEM_WIDE" = 1 ]; then chgrp "$SERVICE_GROUP" "$CONFIG"; fi
}

step_config() {
  record conf "$CONFIG"
  if [ -f "$CONFIG" ]; then say unchanged "configuration $CONFIG (never overwritten)"; return; fi
  say created "configuration $CONFIG"
  act write_config
}

SEEDED=0
seed_models() {
  local item
  for item in "$MODELS_FROM"/*; do
    [ -e "$MODELS/$(basename "$item")" ] && continue
    SEEDED=$((SEEDED + 1))
    # Hard links cost nothing; not for a system install, whose files change owner.
    if [ "$SYSTEM_WIDE" = 1 ] || ! cp -al "$item" "$MODELS/" 2>/dev/null; then cp -a "$item" "$MODELS/"; fi
  done
}

step_models() {
  if [ "$CONTAINER" = 1 ]; then
    say skipped "embedded models (an image carries none: docker/entrypoint.sh fetches them into the models volume)"
    return
  fi
  if [ -n "$MODELS_FROM" ]; then
    [ -d "$MODELS_FROM" ] || { echo "install.sh: --models-from $MODELS_FROM is not a folder" >&2; exit 2; }
    act seed_models
  fi
  [ "$SEEDED" = 0 ] || say updated "model store seeded from $MODELS_FROM: ${SEEDED} item(s)"
  if [ "$DRY" = 1 ]; then say checked "embedded models in $MODELS: would fetch the missing, verify all (sha256)"; return; fi
  local out; out=$(fetch_models "$CONFIG") || { printf '%s\n' "$out" >&2; exit 1; }
  if printf '%s\n' "$out" | grep -qv 'already installed and verified'; then
    printf '%s\n' "$out" | sed 's/^/      /'
    say updated "embedded models in $MODELS (verified)"
  else
    say unchanged "embedded models in $MODELS (verified)"
  fi
}

certs_listing() { find "$DATA/certs" -type f -printf '%P %s %T@\n' 2>/dev/null | sort || true; }

step_certs() {
  # Made in the data volume at first start, so that no two containers of one image share a private key.
  if [ "$CONTAINER" = 1 ]; then
    say skipped "certificates (the gateway makes them at the container's first start)"; return
  fi
  if [ ! -x "$SVENV/bin/mynah" ]; then say skipped "certificates (made by \`mynah certs\` once Mynah is installed)"; return; fi
  if ! "$SVENV/bin/mynah" certs --help >/dev/null 2>&1; then
    say skipped "certificates: this Mynah has no \`mynah certs\` command (HTTPS for the LAN comes with it)"; return
  fi
  # `mynah certs` makes what is missing or due and leaves valid certificates alone; a sub-command, if it has
  # them, is the one that does that.
  local sub before
  sub=$("$SVENV/bin/mynah" certs --help 2>/dev/null | grep -oE '\{[a-z,-]+\}' | head -n 1 | tr -d '{}' | tr , '\n' \
        | grep -xE 'ensure|create|make|init|generate' | head -n 1 || true)
  before=$(certs_listing)
  act "$SVENV/bin/mynah" --config "$CONFIG" certs ${sub:+"$sub"} >/dev/null
  if [ "$DRY" = 0 ] && [ "$(certs_listing)" = "$before" ]; then say unchanged "certificates in $DATA/certs"
  else say created "certificates in $DATA/certs (mynah certs${sub:+ $sub})"; fi
}

step_ownership() {
  [ "$SYSTEM_WIDE" = 1 ] || return 0
  local d todo=()
  for d in "$STATE" "$LOGDIR" "$RUNDIR"; do
    [ -n "$(find "$d" \( ! -user "$SERVICE_USER" -o ! -group "$SERVICE_GROUP" \) -print -quit 2>/dev/null)" ] && todo+=("$d")
  done
  if [ ${#todo[@]} -eq 0 ] && [ "$DRY" = 0 ]; then say unchanged "ownership ($SERVICE_USER) of data, logs, runtime"; return; fi
  say updated "ownership of ${todo[*]:-data, logs, runtime} -> $SERVICE_USER"
  for d in ${todo[@]+"${todo[@]}"}; do act chown -R "$SERVICE_USER:$SERVICE_GROUP" "$d"; done
  act chmod 0700 "$RUNDIR"
}

render_unit() {
  "$PYTHON" "$ROOT/appliance/supervision/unit.py" --user "$SERVICE_USER" --group "$SERVICE_GROUP" \
    --app-dir "$APP" --venv "$SVENV" --config "$CONFIG" --state-dir "$STATE" \
    --writable "$STATE" --writable "$LOGDIR" --writable "$RUNDIR"
}
write_unit() { cat "$1" >"$UNIT"; chmod 0644 "$UNIT"; }

step_unit() {
  if [ "$CONTAINER" = 1 ]; then say skipped "systemd unit (the image's CMD runs what its ExecStart runs)"; return; fi
  local rendered; rendered=$(mktemp); render_unit >"$rendered"
  make_dir "$(dirname "$UNIT")" || true
  record file "$UNIT"
  if [ -f "$UNIT" ] && cmp -s "$rendered" "$UNIT"; then say unchanged "systemd unit $UNIT"; rm -f "$rendered"; return; fi
  if [ -f "$UNIT" ]; then say updated "systemd unit $UNIT"; else say created "systemd unit $UNIT"; fi
  act write_unit "$rendered"
  rm -f "$rendered"
  CHANGED=1
}

step_service() {
  if [ "$CONTAINER" = 1 ]; then
    say skipped "systemctl enable --now $UNIT_NAME (a container is started by docker)"; return
  fi
  if [ "$SYSTEM_WIDE" = 0 ] || [ "$HAS_SYSTEMD" = 0 ]; then
    say skipped "systemctl enable --now $UNIT_NAME (only for an install to / as root with systemd running)"
    printf '      start it by hand: %s --config %s up\n' "$SVENV/bin/mynah" "$CONFIG"
    return
  fi
  if systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null && systemctl is-active --quiet "$UNIT_NAME"; then
    if [ "$CHANGED" = 0 ]; then say unchanged "service $UNIT_NAME (enabled, running)"; return; fi
    say updated "service $UNIT_NAME: restarted with the new code or unit"
    act systemctl daemon-reload; act systemctl restart "$UNIT_NAME"; return
  fi
  say created "service $UNIT_NAME: enabled and started"
  act systemctl daemon-reload
  act systemctl enable --now "$UNIT_NAME"
  record enabled "$UNIT_NAME"
}

step_manifest() {
  local wanted; wanted=$(printf '# What installer/install.sh --system made; uninstall removes it (KIND PATH).\n'; printf '%s\n' "${ENTRIES[@]}")
  if [ -f "$MANIFEST" ] && [ "$(cat "$MANIFEST")" = "$wanted" ]; then say unchanged "install manifest $MANIFEST"; return; fi
  say updated "install manifest $MANIFEST"
  if [ "$DRY" = 0 ]; then printf '%s\n' "$wanted" >"$MANIFEST"; fi
}

install_system() {
  if [ -z "$P" ] && [ "$IS_ROOT" = 0 ] && [ "$DRY" = 0 ]; then
    echo "install.sh: installing to / needs root (sudo), or say --prefix DIR" >&2; exit 2
  fi
  [ -z "$P" ] && confirm "Install Mynah as a service (user $SERVICE_USER, /opt/mynah, /etc/mynah, $UNIT_NAME)"
  if [ -n "$SHARED_VENV" ] && [ -z "$PYTHON" ]; then
    PYTHON=$("$SHARED_VENV/bin/python" -c 'import sys; print(sys._base_executable)')
  fi
  pick_python
  if [ -n "$SHARED_VENV" ] && [ "$("$PYTHON" -c 'import sys; print(sys.version_info[:2])')" \
       != "$("$SHARED_VENV/bin/python" -c 'import sys; print(sys.version_info[:2])')" ]; then
    echo "install.sh: --site-packages-from $SHARED_VENV is another Python version than $PYTHON" >&2; exit 2
  fi
  printf '==> installing Mynah as a service under %s%s\n' "${P:-/}" "$([ "$DRY" = 1 ] && echo ' (dry run: nothing changes)')"
  load_manifest
  step_user
  step_layout
  step_code
  step_venv
  step_packages
  step_config
  step_models
  step_certs
  step_ownership
  step_unit
  step_service
  step_manifest
  printf '\n%s\n' "$([ "$DRY" = 1 ] && echo 'Dry run: nothing was changed.' || echo "Installed. Check the box with: $SVENV/bin/mynah --config $CONFIG doctor")"
}

uninstall_system() {
  [ -f "$MANIFEST" ] || { echo "install.sh: nothing to uninstall under ${P:-/}: no $MANIFEST" >&2; exit 1; }
  if [ -z "$P" ] && [ "$IS_ROOT" = 0 ] && [ "$DRY" = 0 ]; then echo "install.sh: uninstalling from / needs root" >&2; exit 2; fi
  [ "$PURGE" = 1 ] && confirm "Remove Mynah with its data, models, logs and configuration (--purge)"
  printf '==> uninstalling Mynah from %s%s\n' "${P:-/}" "$([ "$DRY" = 1 ] && echo ' (dry run: nothing changes)')"
  load_manifest
  local i kind path
  # A hand-started appliance (mynah up) is stopped first; the service is stopped by its entry below.
  if [ -x "$SVENV/bin/mynah" ] && [ -f "$CONFIG" ] && "$SVENV/bin/mynah" --config "$CONFIG" status >/dev/null 2>&1; then
    say ran "mynah down"; act "$SVENV/bin/mynah" --config "$CONFIG" down
  fi
  act rm -f "$MANIFEST"
  for ((i = ${#ENTRIES[@]} - 1; i >= 0; i--)); do
    kind=${ENTRIES[i]%% *} path=${ENTRIES[i]#* }
    case "$kind" in
      enabled)
        if [ "$HAS_SYSTEMD" = 1 ]; then say removed "service $path (disabled, stopped)"; act systemctl disable --now "$path"; fi ;;
      tree|file)
        [ -e "$path" ] || continue; say removed "$path"; act rm -rf "$path" ;;
      dir)
        [ -d "$path" ] || continue
        if [ -z "$(ls -A "$path")" ]; then say removed "$path"; act rmdir "$path"
        fi ;;
      data|conf|user)
        if [ "$PURGE" = 0 ]; then say kept "$path ($kind; --purge removes it)"; continue; fi
        if [ "$kind" = user ]; then
          if id -u "$path" >/dev/null 2>&1; then say removed "service user $path"; act userdel "$path"; fi
        elif [ -e "$path" ]; then say removed "$path"; act rm -rf "$path"; fi ;;
      *) echo "install.sh: ignoring an unknown manifest line: ${ENTRIES[i]}" >&2 ;;
    esac
  done
  if [ "$HAS_SYSTEMD" = 1 ] && [ "$SYSTEM_WIDE" = 1 ] && [ "$DRY" = 0 ]; then systemctl daemon-reload; fi
  printf '\n%s\n' "$([ "$DRY" = 1 ] && echo 'Dry run: nothing was changed.' || echo 'Uninstalled.')"
}

case "$MODE" in
  system) install_system ;;
  uninstall) uninstall_system ;;
esac
