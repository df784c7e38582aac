"""The real Pulumi engine for the tests, the benchmarks and the demo: where this clone keeps it,
its setup, the engine's floor and ceiling programs, and a driver of a Pulumi project on it.
Dev-only: the wheel ships none of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from margin_special_keys.gitops.engine import Run, pulumi_environment, stack_config_dir

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"


def ensure_engine() -> Path:
    """The engine in .tools/bin; built when missing, never skipped."""
    pulumi = TOOLS_BIN / "pulumi"
    if not (pulumi.exists() and (TOOLS_BIN / "pulumi-language-python").exists()):
        subprocess.run(["bash", str(ROOT / "tools" / "setup-engine.sh")], check=True)
    return pulumi


# A program of N dynamic resources that do nothing: the engine's own floor, for benchmarks.
NOOP_PROGRAM = '''
import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class NoopProvider(ResourceProvider):
    def create(self, props):
        return CreateResult("noop-" + props["name"], {"name": props["name"]})


class Noop(Resource):
    def __init__(self, name):
        super().__init__(NoopProvider(), name, {"name": name})


for i in range(int(pulumi.Config().get("count") or 1)):
    Noop(f"noop-{i}")
pulumi.export("answer", 42)
'''


# A program of N dynamic resources whose create sends one bare request to `url` and nothing else
# (no signing, no keypair, one kept-alive connection per host thread): the most requests any
# dynamic provider keeps in flight on this engine, for benchmarks. The answer is not read for
# meaning; the request only has to reach the exchange and wait there.
BARE_REQUEST_PROGRAM = '''
import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class BareRequestProvider(ResourceProvider):
    def create(self, props):
        import http.client, threading, urllib.parse

        # Made in the provider process on first use, never pickled: one connection per thread.
        local = self.__dict__.get("_local") or self.__dict__.setdefault("_local", threading.local())
        if not hasattr(local, "connection"):
            url = urllib.parse.urlsplit(props["url"])
            local.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        local.connection.request("POST", props["path"])
        local.connection.getresponse().read()
        return CreateResult("bare-" + props["name"], {"name": props["name"]})


class BareRequest(Resource):
    def __init__(self, name, url, path):
        super().__init__(BareRequestProvider(), name, {"name": name, "url": url, "path": path})


config = pulumi.Config()
for i in range(int(config.get("count") or 1)):
    BareRequest(f"bare-{i}", config.require("url"), config.require("path"))
'''


@dataclass
class PulumiProject:
    """A Pulumi project in `directory` running this repository's program and providers, on a
    file backend in `directory/state` with passphrase secrets."""

    directory: Path
    home: Path
    stack: str = "test"
    passphrase: str = "test-passphrase-not-secret"
    # Outputs of runs may hold secrets (--show-secrets): kept out of reprs.
    extra_env: dict[str, str] = field(default_factory=dict, repr=False)
    runs: list[Run] = field(default_factory=list, repr=False)
    # The state backend's URL; None: a file backend in `directory/state`.
    backend: str | None = None

    @classmethod
    def create(cls, directory: Path, home: Path, program: str | None = None,
               stack: str = "test", backend: str | None = None,
               name: str = "margin-special-keys") -> Self:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "state").mkdir(exist_ok=True)
        (directory / "stacks").mkdir(exist_ok=True)
        (directory / "Pulumi.yaml").write_text(
            f"name: {name}\n"
            "runtime:\n  name: python\n  options:\n    toolchain: pip\n"
            f"    virtualenv: {ROOT / '.venv'}\n"
            "stackConfigDir: stacks\n"
        )
        if program is None:
            shutil.copy(ROOT / "__main__.py", directory / "__main__.py")
        else:
            (directory / "__main__.py").write_text(program)
        project = cls(directory, home, stack, backend=backend)
        project.init_stack()
        return project

    def other_stack(self, stack: str) -> Self:
        """Another stack of the same project (one stack per sub-account)."""
        project = type(self)(self.directory, self.home, stack, self.passphrase, dict(self.extra_env),
                             backend=self.backend)
        project.init_stack()
        return project

    def init_stack(self) -> None:
        self.run("stack", "init", self.stack)

    def env(self) -> dict[str, str]:
        # The endpoints this process's environment vouches for stay (tests and the bench allow
        # their sandboxes); every other BINANCE_ and PULUMI_ setting of the caller goes.
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("BINANCE_", "PULUMI_")) or k == "BINANCE_ALLOW_BASE_URL"}
        env = pulumi_environment(clean, backend=self.backend or f"file://{self.directory / 'state'}",
                                 tools_bin=TOOLS_BIN,
                                 passphrase=self.passphrase, home=self.home)
        env.update(PULUMI_SKIP_CONFIRMATIONS="true", NO_COLOR="1")
        env.update(self.extra_env)
        return env

    def run(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 300) -> Run:
        cmd = ["pulumi", *args, "--non-interactive", "--color", "never"]
        if args[:2] != ("stack", "init") and args[:1] != ("version",):
            cmd += ["--stack", self.stack]
        proc = subprocess.run(cmd, cwd=self.directory, env=self.env(), capture_output=True,
                              text=True, input=input, timeout=timeout)
        run = Run(cmd, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        if check and proc.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{run.output}")
        return run

    # --- config ---

    def set_secret(self, key: str, value: str) -> None:
        # Through stdin: a secret never travels in argv, where `ps` would show it.
        self.run("config", "set", "--secret", key, input=value)

    def config_file(self) -> Path:
        return stack_config_dir(self.directory) / f"Pulumi.{self.stack}.yaml"

    def stack_file(self) -> dict[str, Any]:
        """The stack's file as a document ({} before it exists)."""
        import yaml

        path = self.config_file()
        return dict((yaml.safe_load(path.read_text()) if path.exists() else None) or {})

    def write_stack_file(self, document: dict[str, Any]) -> None:
        import yaml

        path = self.config_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def _edit_config(self, key: str, value: Any) -> None:
        """Plaintext config written into the stack's file as a person edits it in a pull request
        (secrets go through `pulumi config set --secret`): no engine process, no key derivation."""
        document = self.stack_file()
        document.setdefault("config", {})[key] = value
        self.write_stack_file(document)

    def set_config(self, key: str, value: str) -> None:
        # As `pulumi config set` does: a key without a namespace is the project's.
        self._edit_config(key if ":" in key else f"margin-special-keys:{key}", value)

    def set_object(self, key: str, value: Any) -> None:
        self._edit_config(f"margin-special-keys:{key}", value)

    def use_account(self, base_url: str, account: Mapping[str, str]) -> None:
        self.set_config("binance:baseUrl", base_url)
        self.set_secret("binance:apiKey", account["apiKey"])
        if "privateKey" in account:
            self.set_secret("binance:privateKey", account["privateKey"])
        else:
            self.set_secret("binance:secretKey", account["secretKey"])

    def set_keys(self, keys: list[dict[str, Any]]) -> None:
        self.set_object("keys", keys)

    # --- lifecycle ---

    def up(self, check: bool = True) -> Run:
        return self.run("up", "--yes", "--skip-preview", check=check)

    def preview(self, *extra: str, check: bool = True) -> Run:
        return self.run("preview", *extra, check=check)

    def preview_steps(self) -> list[dict[str, Any]]:
        """The steps a preview plans, from `pulumi preview --json`."""
        run = self.run("preview", "--json")
        return list(json.loads(run.stdout).get("steps", []))

    def planned_ops(self) -> dict[str, list[str]]:
        """Resource name -> the operations `pulumi preview` plans for it."""
        ops: dict[str, list[str]] = {}
        for step in self.preview_steps():
            ops.setdefault(step["urn"].rsplit("::", 1)[-1], []).append(step["op"])
        return ops

    def expect_no_changes(self) -> None:
        self.run("preview", "--expect-no-changes")

    def refresh(self, *extra: str) -> Run:
        return self.run("refresh", "--yes", "--skip-preview", *extra)

    def destroy(self) -> Run:
        return self.run("destroy", "--yes", "--skip-preview")

    def export(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "export").stdout))

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json"] + (["--show-secrets"] if show_secrets else [])
        return dict(json.loads(self.run(*args).stdout))

    def resources(self, type_suffix: str = "MarginSpecialKey") -> list[dict[str, Any]]:
        deployment = self.export()["deployment"]
        return [r for r in deployment.get("resources", []) if r["type"].endswith(type_suffix)]
