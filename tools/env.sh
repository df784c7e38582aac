# Source this to use the project's engine by hand, as `make` does:
#   source tools/env.sh && pulumi stack ls
# It sets no passphrase: for the demo stack (sandbox-demo, backend .state/), prefix commands with
#   PULUMI_CONFIG_PASSPHRASE=demo-passphrase-for-the-local-sandbox-only
# and for your own stacks use your own passphrase or secrets provider.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$_root/.tools/bin:$PATH"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$_root/.state}"
export PULUMI_HOME="${PULUMI_HOME:-$_root/.tools/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
unset _root
