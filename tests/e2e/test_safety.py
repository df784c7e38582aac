"""Safe by default, on the real engine: nothing widened or exposed that the user did not declare."""

from __future__ import annotations

import base64
import subprocess
import textwrap
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.harness import ROOT, PulumiProject, SandboxAccount, SandboxProcess


def private_pem() -> str:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()


def pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


def test_a_key_without_an_ip_restriction_needs_an_explicit_opt_in_and_hmac_warns(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    sandbox.reset_requests()
    project.set_keys([{"name": "open"}], as_given=True)
    refused = project.preview(check=False)
    assert refused.returncode != 0
    assert "keys[0].ipWhitelist: is empty" in refused.output and "allowAnyIp: true" in refused.output
    assert sandbox.requests_log() == []  # refused before any request

    # An HMAC key, which also warns on every run that Binance deprecates the type.
    project.set_keys([{"name": "open", "keyType": "HMAC", "allowAnyIp": True}], as_given=True)
    for run in (project.preview(), project.up(), project.preview()):
        assert "allowAnyIp: this trading key has no IP restriction" in run.output
        assert "Binance deprecates HMAC keys and recommends Ed25519" in run.output
    assert [(k["type"], k["ips"]) for k in sandbox.special_keys(account["accountId"])] == [
        ("HMAC_SHA256", [])]


def test_an_empty_symbol_never_widens_a_key_to_cross_margin(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    project.set_keys([{"name": "btc", "symbol": ""}])
    refused = project.preview(check=False)
    assert refused.returncode != 0 and "keys[0].symbol: is empty: omit symbol" in refused.output
    assert sandbox.special_keys(account["accountId"]) == []


def test_credentials_in_plaintext_config_are_refused_with_the_command_that_fixes_them(
    project: PulumiProject, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    assert "privateKey" in account
    # Forgot --secret (the value through stdin, so no test output ever shows it).
    project.run("config", "set", "binance:privateKey", input=account["privateKey"])
    project.set_keys([{"name": "k"}])
    refused = project.preview(check=False)
    assert refused.returncode != 0
    assert ("binance:privateKey is stored in plaintext in the stack's config file; store it"
            " encrypted: `pulumi config set --secret binance:privateKey < provider-key.pem`"
            in refused.output)
    assert pem_body(account["privateKey"]) not in refused.output
    project.set_secret("binance:privateKey", account["privateKey"])

    adopted = private_pem()
    project.set_keys([{"name": "k"}, {"name": "old", "adoptApiKey": "A" * 64,
                                      "adoptPrivateKey": adopted}])
    refused = project.preview(check=False)
    assert ("`pulumi config set --secret --path 'margin-special-keys:keys[1].adoptPrivateKey'"
            " < adopted-key.pem`") in refused.output
    assert pem_body(adopted) not in refused.output
    # The fix as printed: after it, the key is encrypted and the plaintext check passes.
    project.run("config", "set", "--secret", "--path", "keys[1].adoptPrivateKey", input=adopted)
    stack_file = (project.directory / "stacks" / f"Pulumi.{project.stack}.yaml").read_text()
    assert pem_body(adopted)[:40] not in stack_file
    assert "plaintext" not in project.preview(check=False).output


def test_a_private_key_pasted_as_public_key_is_never_printed(
    tmp_path: object, pulumi_home: object, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    """A program of the user's own, bypassing the stack-config checks: the provider's check
    failure names the field, and the engine prints no value beside it."""
    from pathlib import Path

    pem = private_pem()
    program = textwrap.dedent(f"""
        import base64
        import pulumi
        from margin_special_keys import MarginSpecialKey

        pem = base64.b64decode({base64.b64encode(pem.encode())!r}).decode()
        MarginSpecialKey("pasted", api_name="pasted", ip_whitelist=["198.51.100.7"], public_key=pem)
    """)
    assert isinstance(tmp_path, Path) and isinstance(pulumi_home, Path)
    project = PulumiProject.create(tmp_path / "own", pulumi_home, program=program)
    project.extra_env["PYTHONPATH"] = str(ROOT)
    project.use_account(sandbox.base_url, account)
    refused = project.preview("--diff", check=False)
    assert refused.returncode != 0
    assert "public_key: must be a PKCS#8 PEM that starts with -----BEGIN PUBLIC KEY-----" in refused.output
    for line in pem.splitlines():
        if "-----" not in line:
            assert line not in refused.output
    assert "PRIVATE KEY" not in refused.output
    assert sandbox.special_keys(account["accountId"]) == []


def test_keys_under_the_projects_own_namespace_are_refused_never_silently_ignored(
    tmp_path: Path, pulumi_home: Path, sandbox: SandboxProcess, account: SandboxAccount,
) -> None:
    """`pulumi config set --path 'keys[0].name' …` writes `<project>:keys`: in a repo made from the
    template with a project of another name, a program reading nothing there would declare no key,
    and the next `up` would delete every live one."""
    project = PulumiProject.create(tmp_path / "desk-infra", pulumi_home, name="desk-infra")
    project.use_account(sandbox.base_url, account)
    project.set_keys([{"name": "desk"}])
    assert project.up().returncode == 0
    document = project.stack_file()
    document["config"]["desk-infra:keys"] = document["config"].pop("margin-special-keys:keys")
    project.write_stack_file(document)
    sandbox.reset_requests()
    refused = project.preview(check=False)
    assert refused.returncode != 0
    assert "desk-infra:keys is not read: this program reads margin-special-keys:keys" in refused.output
    assert "pulumi config rm desk-infra:keys" in refused.output
    assert len(sandbox.special_keys(account["accountId"])) == 1  # the live key is left alone
    assert all(r["method"] == "GET" for r in sandbox.requests_log(account["accountId"]))
    # The command the message gives moves it, and the stack is as it was.
    move = refused.output.split("Move it: ", 1)[1].splitlines()[0].strip()
    move = move.replace("pulumi config", f"pulumi --non-interactive config --stack {project.stack}")
    subprocess.run(["bash", "-ec", move], cwd=project.directory, env=project.env(), check=True,
                   capture_output=True)
    project.expect_no_changes()
