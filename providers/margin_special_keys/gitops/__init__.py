"""The GitOps runner: preview, up, refresh, drift and the orphan audit over every stack."""
