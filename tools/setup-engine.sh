#!/usr/bin/env bash
# Ensures the Pulumi engine is in .tools/bin: the CLI, Pulumi's Python language host, Pulumi's
# Python program executor and its dynamic-provider launcher. Idempotent: with the right files
# present it only prints what runs (`pulumi version`, and which language host).
#
# Order of preference:
#   1. An official Pulumi install (>= 3.270, with its pulumi-language-python) on PATH: linked as it
#      is, never rebuilt. PATH is searched without .tools/bin, so the second `make` still finds it,
#      and a link made by an earlier run keeps pointing at it; no Go is needed.
#   2. Otherwise built from Go modules, with Go's own module and build caches (outside the clone),
#      so a re-run is fast: the CLI through the wrapper module in tools/pulumi, and Pulumi's own Go
#      language host, from $PULUMI_LANGUAGE_PYTHON_SRC (a folder with its upstream source and a
#      build.sh; the Makefile points it at ../shared/pulumi-language-python when that exists) or
#      from its Go module where a proxy serves it.
#   3. Last resort, clearly labelled: this project's own Python language host
#      (tools/pulumi/language_host.py), when Pulumi's cannot be built here.
# This project's host is also always laid out in .tools/fallback-host, for the smoke test that keeps
# that fallback honest (tests/e2e/test_engine_floor.py).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
fallback="$root/.tools/fallback-host"
version="v3.274.1"
venv_python="$root/.venv/bin/python"
mkdir -p "$bin" "$fallback"

have_version() { # $1: a pulumi binary; true when it reports 3.270 or newer
  local v
  v=$("$1" version 2>/dev/null | sed 's/^v//') || return 1
  python3 - "$v" <<'EOF'
import sys
parts = sys.argv[1].split("-")[0].split(".")
sys.exit(0 if len(parts) >= 2 and (int(parts[0]), int(parts[1])) >= (3, 270) else 1)
EOF
}

# PATH without .tools/bin: what the user installed, whatever order make put PATH in.
user_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$bin" | paste -sd: -)

official=""
if [ -L "$bin/pulumi" ] && [ -x "$(readlink -f "$bin/pulumi")" ]; then
  linked=$(readlink -f "$bin/pulumi")
  if [ -x "$(dirname "$linked")/pulumi-language-python" ] && have_version "$linked"; then
    official="$linked"   # linked by an earlier run: keep using it
  fi
fi
if [ -z "$official" ]; then
  candidate=$(PATH="$user_path" command -v pulumi 2>/dev/null || true)
  if [ -n "$candidate" ] && [ -x "$(dirname "$(readlink -f "$candidate")")/pulumi-language-python" ] \
      && have_version "$candidate"; then
    official=$(readlink -f "$candidate")
  fi
fi

host_label=""
if [ -n "$official" ]; then
  dir=$(dirname "$official")
  for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    if [ -e "$dir/$f" ]; then ln -sfn "$dir/$f" "$bin/$f"; fi
  done
  host_label="Pulumi's Go language host, from the official install in $dir"
else
  if ! command -v go >/dev/null 2>&1; then
    echo "setup-engine: no official Pulumi CLI (>= 3.270) on PATH and no Go to build one." >&2
    echo "  Install Pulumi (https://www.pulumi.com/docs/install/) or Go, then run make again." >&2
    exit 127
  fi
  if ! { [ -x "$bin/pulumi" ] && [ ! -L "$bin/pulumi" ] \
         && [ "$("$bin/pulumi" version 2>/dev/null)" = "$version" ]; }; then
    echo "building the Pulumi CLI $version from Go modules (first time: several minutes)..." >&2
    start=$(date +%s)
    rm -f "$bin/pulumi"
    (cd "$root/tools/pulumi" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
      -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    mv "$bin/pulumi.tmp" "$bin/pulumi"
    echo "built in $(( $(date +%s) - start ))s" >&2
  fi
  sdk=$(cd "$root/tools/pulumi" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
  # Files in the module cache are read-only and lose their run bit: install them with one.
  for f in pulumi-language-python-exec pulumi-resource-pulumi-python; do rm -f "$bin/$f"; done
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$bin/pulumi-language-python-exec"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$bin/pulumi-resource-pulumi-python"

  # Pulumi's Go language host, unless the one in place is already it, at this version.
  is_go_host() { [ -x "$1" ] && [ ! -L "$1" ] && ! head -c 2 "$1" | grep -q '#!' \
                 && [ "$("$1" -version 2>/dev/null)" = "$version" ]; }
  host="$bin/pulumi-language-python"
  if is_go_host "$host"; then
    host_label="Pulumi's Go language host $version (built here)"
  else
    rm -f "$host"
    built=""
    if [ -n "${PULUMI_LANGUAGE_PYTHON_SRC:-}" ] && [ -f "$PULUMI_LANGUAGE_PYTHON_SRC/build.sh" ]; then
      echo "building Pulumi's Go language host for Python from $PULUMI_LANGUAGE_PYTHON_SRC..." >&2
      out=$(mktemp -d)
      if bash "$PULUMI_LANGUAGE_PYTHON_SRC/build.sh" "$out" >&2; then
        mv "$out/pulumi-language-python" "$host" && built="from $PULUMI_LANGUAGE_PYTHON_SRC"
      fi
      rm -rf "$out"
    fi
    if [ -z "$built" ]; then
      echo "building Pulumi's Go language host for Python from its Go module..." >&2
      if GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath \
          -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
          "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3@$version" >&2; then
        built="from its Go module"
      fi
    fi
    if [ -n "$built" ]; then
      host_label="Pulumi's Go language host $version (built here $built)"
    fi
  fi
fi

# This project's own language host: always in .tools/fallback-host; in .tools/bin only when
# Pulumi's could be neither found nor built.
install -m 0644 "$root/tools/pulumi/language_host.py" "$fallback/language_host.py"
cat >"$fallback/pulumi-language-python.tmp" <<EOF
#!/bin/sh
# Generated by tools/setup-engine.sh: this project's own Python language host, the LAST RESORT for
# machines where Pulumi's Go language host can be neither installed nor built.
exec "\${PULUMI_LANGUAGE_HOST_PYTHON:-$venv_python}" -u "$fallback/language_host.py" "\$@"
EOF
chmod 0755 "$fallback/pulumi-language-python.tmp"
mv "$fallback/pulumi-language-python.tmp" "$fallback/pulumi-language-python"
for f in pulumi pulumi-language-python-exec pulumi-resource-pulumi-python; do
  ln -sfn "$bin/$f" "$fallback/$f"
done
if [ -z "$host_label" ]; then
  ln -sfn "$fallback/pulumi-language-python" "$bin/pulumi-language-python"
  ln -sfn "$fallback/language_host.py" "$bin/language_host.py"
  host_label="LAST RESORT: this project's own language host (tools/pulumi/language_host.py);"
  host_label+=" Pulumi's Go host could not be built (set PULUMI_LANGUAGE_PYTHON_SRC)"
else
  rm -f "$bin/language_host.py"
fi
printf '%s\n' "$host_label" >"$root/.tools/language-host"

"$bin/pulumi" version
echo "language host: $host_label" >&2
