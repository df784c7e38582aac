#!/usr/bin/env bash
# Ensures the system programs the suite runs against are on this machine, from Debian's packages:
#   - PostgreSQL's server (package `postgresql`): the team scenarios run on Pulumi's postgres://
#     state backend against a throw-away cluster the suite starts itself (devtools/postgres.py);
#   - age (package `age`): the sealed hand-off is proven to open with the standard age CLI.
# Idempotent: with both present it installs nothing. Installs as root, or through sudo.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_config >/dev/null 2>&1 \
  || missing+=(postgresql)
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing+=(age)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages the suite needs: ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
