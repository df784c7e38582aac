#!/usr/bin/env bash
# Lints the GitHub workflow examples and the template's copies with actionlint, installed into
# .tools/bin from the Go module proxy the first time (Go's caches make it fast after). Where Go is
# missing it says so and skips: check-jsonschema has already validated the files against GitHub's
# schema.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v1.7.12
bin="$root/.tools/bin/actionlint"
if ! { [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "^${version#v}"; }; then
  if ! command -v go >/dev/null 2>&1; then
    echo "actionlint: skipped (installing it needs Go)" >&2
    exit 0
  fi
  mkdir -p "$root/.tools/bin"
  GOBIN="$root/.tools/bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
fi
"$bin" -config-file "$root/examples/actionlint.yaml" "$root"/examples/github-actions*.yml \
  "$root"/templates/special-keys/.github/workflows/*.yml
