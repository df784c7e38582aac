"""The LAST-RESORT Python language host for the Pulumi engine, as a small gRPC server.

Real users run Pulumi's own Go language host (`pulumi-language-python`), and so does this
project's suite: tools/setup-engine.sh links an official install or builds Pulumi's host from its
upstream source. This host is used only where neither is possible (its Go module is not served by
every module proxy), and a smoke test keeps it working (tests/e2e/test_engine_floor.py); it lacks
`RunPlugin`, so Python policy packs need Pulumi's host. This host implements the same
`pulumirpc.LanguageRuntime` service with the gRPC stubs that ship in the `pulumi` Python SDK, and
runs programs the way Pulumi's Go host does: it starts Pulumi's own `pulumi-language-python-exec`
(copied from the SDK module next to this host) with the project's virtualenv python, hands it the
monitor and engine addresses, and passes the stack config through `PULUMI_CONFIG`.

`pulumi about` names it: its version carries the `fallback.msk` pre-release tag.

The engine starts this process with optional logging flags and the engine address as the last
argument, reads the port from the first line of stdout, then calls the RPCs below.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

HOST_VERSION = "3.274.1-fallback.msk"  # `pulumi about` shows which host ran
# Exit code pulumi-language-python-exec uses after it has shown the user an actionable message.
EXIT_AFTER_USER_MESSAGE = 32
EXECUTOR = Path(__file__).resolve().with_name("pulumi-language-python-exec")
HEALTH_CHECK_SECONDS = 2.0


def _options(info: language_pb2.ProgramInfo) -> dict[str, Any]:
    if not info.HasField("options"):
        return {}
    return {key: value for key, value in info.options.items()}


def _python_for(info: language_pb2.ProgramInfo) -> str:
    """The interpreter the program runs with: the project's virtualenv when Pulumi.yaml names one."""
    virtualenv = _options(info).get("virtualenv")
    if virtualenv:
        root = Path(info.root_directory or os.getcwd())
        venv = Path(virtualenv) if os.path.isabs(virtualenv) else root / virtualenv
        return str(venv / "bin" / "python")
    return os.environ.get("PULUMI_PYTHON_CMD", "python3")


def _virtualenv_env(python: str) -> dict[str, str]:
    """Environment for a child that runs inside the virtualenv, as an activated shell would have it."""
    env = dict(os.environ)
    bin_dir = str(Path(python).parent)
    if Path(bin_dir, "activate").exists():
        env["VIRTUAL_ENV"] = str(Path(bin_dir).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env.pop("PYTHONHOME", None)
    return env


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str) -> None:
        self.engine_address = engine_address
        self.lock = threading.Lock()
        self.programs: set[subprocess.Popen[bytes]] = set()

    def stop_programs(self) -> None:
        with self.lock:
            running = list(self.programs)
        for program in running:
            program.terminate()
        for program in running:
            try:
                program.wait(timeout=5)
            except subprocess.TimeoutExpired:
                program.kill()

    def Handshake(self, request: Any, context: Any) -> Any:
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        # Dynamic providers are served by the engine's bundled pulumi-python plugin; a project that
        # needs other provider plugins declares them in Pulumi.yaml.
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPackagesResponse()

    def RuntimeOptionsPrompts(self, request: Any, context: Any) -> Any:
        return language_pb2.RuntimeOptionsResponse()

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    def About(self, request: Any, context: Any) -> Any:
        python = _python_for(request.info)
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return language_pb2.AboutResponse(executable=python, version=version)

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        python = _python_for(request.info)
        listed = subprocess.run(
            [python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            check=False,
            env=_virtualenv_env(python),
        )
        packages = json.loads(listed.stdout or "[]")
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[
                language_pb2.DependencyInfo(name=p["name"], version=p["version"]) for p in packages
            ]
        )

    def InstallDependencies(self, request: Any, context: Any) -> Iterator[Any]:
        info = request.info
        root = Path(info.root_directory or request.directory or os.getcwd())
        python = _python_for(info)
        commands: list[list[str]] = []
        if not Path(python).exists() and os.path.isabs(python):
            commands.append([sys.executable, "-m", "venv", str(Path(python).parent.parent)])
        requirements = root / "requirements.txt"
        if requirements.exists():
            commands.append([python, "-m", "pip", "install", "-r", str(requirements)])
        for command in commands:
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=root
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                yield language_pb2.InstallDependenciesResponse(stdout=line)
            if proc.wait() != 0:
                context.abort(grpc.StatusCode.UNKNOWN, f"{' '.join(command)} failed")

    def Run(self, request: Any, context: Any) -> Any:
        info = request.info
        python = _python_for(info)
        if os.path.isabs(python) and not Path(python).exists():
            return language_pb2.RunResponse(
                error=f"the virtualenv python {python} does not exist; run `make venv` first"
            )
        entry = info.entry_point or request.program or "."
        program_dir = info.program_directory or request.pwd or os.getcwd()
        program = entry if os.path.isabs(entry) else os.path.join(program_dir, entry)
        args = [
            python,
            "-u",
            str(EXECUTOR),
            "--monitor", request.monitor_address,
            "--engine", self.engine_address,
            "--project", request.project,
            "--stack", request.stack,
            "--pwd", request.pwd or program_dir,
            "--dry_run", "true" if request.dryRun else "false",
            "--parallel", str(request.parallel),
            "--organization", request.organization or "organization",
        ]
        if info.root_directory:
            args += ["--root_directory", info.root_directory]
        args += [program, *request.args]

        env = _virtualenv_env(python)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        # The program's stdout and stderr are ours, which the engine shows to the user.
        program = subprocess.Popen(args, env=env, cwd=request.pwd or program_dir)
        with self.lock:
            self.programs.add(program)
        try:
            code = program.wait()
        finally:
            with self.lock:
                self.programs.discard(program)
        if code == 0:
            return language_pb2.RunResponse()
        if code == EXIT_AFTER_USER_MESSAGE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")


def engine_alive(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def watch_engine(address: str, stopped: threading.Event) -> None:
    """Like Pulumi's own plugins' health check: when the engine is gone (a killed `pulumi up`),
    stop, so neither this host nor the program it runs is left behind."""
    failures = 0
    while not stopped.wait(HEALTH_CHECK_SECONDS):
        failures = 0 if engine_alive(address) else failures + 1
        if failures >= 2:
            stopped.set()


def main(argv: list[str]) -> None:
    # The engine puts flags (--logtostderr, -v=N, --tracing X) first and its address last.
    engine_address = argv[-1] if argv and not argv[-1].startswith("-") else ""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)],
    )
    host = LanguageHost(engine_address)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # The engine ends plugins with SIGINT (then SIGKILL): stop serving and exit quietly.
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    if engine_address:
        threading.Thread(target=watch_engine, args=(engine_address, stopped), daemon=True).start()
    stopped.wait()
    host.stop_programs()
    server.stop(grace=1)


if __name__ == "__main__":
    main(sys.argv[1:])
