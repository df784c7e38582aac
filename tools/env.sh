# Source this to use the project's engine by hand, as `make demo` does:
#   source tools/env.sh && pulumi stack output --stack dev
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$_root/.tools/bin:$PATH"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_root/.state}"
export PULUMI_HOME="${PULUMI_HOME:-$_root/.tools/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE=demo-passphrase-for-the-local-sandbox-only
fi
unset _root
