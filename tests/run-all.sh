#!/usr/bin/env bash
# The whole test suite: unit, integration and end-to-end tests with real peers on 127.0.0.1.
# Installs what the tests need (Debian packages via apt-get, Python packages via pip) when it
# is missing, then runs every test of the workspace. Exit status: 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "run-all.sh: need root (or sudo) to install: $*" >&2; return 1; fi
}

# Debian packages the end-to-end tests use. policy-rc.d keeps Debian from starting the stock
# daemons (kamailio, ...) on install: the tests start their own, on free ports.
ensure_debs() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run-all.sh: installing ${missing[*]}"
  # Only remove a policy-rc.d we created (the machine may have its own, e.g. in containers).
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
    own_policy=1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ $own_policy = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
}

ensure_pip() {
  local missing=()
  for spec in "$@"; do
    python3 -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('${spec%%==*}') == '${spec##*==}' else 1)" \
      2>/dev/null || missing+=("$spec")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "run-all.sh: pip installing ${missing[*]}"
  python3 -m pip --version >/dev/null 2>&1 || ensure_debs python3-pip
  # Debian's own python3 refuses system-wide pip installs (PEP 668) unless told otherwise.
  python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}" \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${missing[@]}"
}

# Tools a fresh Debian machine with only the Rust toolchain may lack.
command -v python3 >/dev/null || ensure_debs python3
command -v npm >/dev/null || ensure_debs nodejs npm

if [ -f tests/peers/requirements.deb ]; then
  mapfile -t debs < <(grep -v '^#' tests/peers/requirements.deb | grep .)
  ensure_debs "${debs[@]}"
fi
if [ -f tests/peers/requirements.txt ]; then
  mapfile -t pips < <(grep -v '^#' tests/peers/requirements.txt | grep .)
  ensure_pip "${pips[@]}"
fi
# Node modules of the browser tests (playwright-core only; the browser is Debian's chromium).
if [ -f tests/browser/package-lock.json ] && [ ! -d tests/browser/node_modules ]; then
  echo "run-all.sh: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The benchmarks' smoke runs first (a few seconds each; `cargo bench` gives the real figures).
# call_load's doubles as the end-to-end call test with a WebRTC client built on rtc: it fails
# unless every call is established, carries audio both ways and ends with terminated.
if [ $# -eq 0 ]; then
  cargo test --locked --bench call_load --bench sylkrtc_request --bench messaging_load --bench chat_load \
    --bench presence_load
  cargo test --locked -p media --bench bridge_packet --bench rtp_rewrite --bench srtp_packet
  # The soak's CI form (issue 16): 5 minutes of call cycles in waves of 20 (debug build);
  # `cargo bench --bench soak` is the release form, see benches/soak.rs for the long one.
  CYCLES=1000000 WAVE=20 MEDIA=2 MINUTES="${SOAK_MINUTES:-5}" cargo test --locked --bench soak
fi

cargo test --workspace --locked "$@"
