# Source this to use the project's engine by hand, as `make` does:
#   source tools/env.sh && pulumi version
# It puts the engine on PATH and sets no backend and no passphrase: your own stacks use your own
# (`pulumi login s3://…`, `postgres://…` or Pulumi Cloud; a passphrase or a KMS secrets provider).
# The demo's stack alone lives in this clone's .state/ (which `make clean` removes): `make demo`
# prints the two exports that reach it.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$_root/.tools/bin:$PATH"
export PULUMI_HOME="${PULUMI_HOME:-$_root/.tools/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
unset _root
