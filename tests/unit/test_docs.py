"""The docs say only what is true: every command, flag, setting, default, range, exit code, path,
link and captured output they quote is checked here against the code or the tree. (The field
table: tests/unit/test_stack_config.py; the preflight's rows: tests/provider/test_preflight.py;
the Layout: tests/unit/test_layout.py; the captured outputs against a new run:
tests/e2e/test_captured_output.py.)"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT

DOCS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md",
               ROOT / "templates" / "special-keys" / "README.md", *(ROOT / "docs").glob("*.md")])
CODE = "\n".join(p.read_text() for p in (ROOT / "providers").rglob("*.py"))


def text_of(path: Path) -> str:
    return path.read_text()


def block(path: Path, name: str) -> str:
    text = text_of(path)
    assert f"<!-- {name}:start -->" in text, f"{path.name} has no {name} block"
    return text.split(f"<!-- {name}:start -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def rows_by_name(doc: str, name: str) -> dict[str, list[str]]:
    """A marked table of docs/<doc>, by its first column."""
    return {row[0].strip("`"): row for row in table_rows(block(ROOT / "docs" / doc, name))}


def table_rows(markdown: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]
    return rows[2:]  # past the header and its rule


def help_of(main: Callable[[list[str]], object], argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()


def quoted_commands(module: str) -> Iterator[tuple[Path, list[str]]]:
    """Each `python -m <module> ...` (or the runner's short `gitops ...`) the docs quote, as tokens
    up to the end of the command (a comment, a pipe, a closing backtick or parenthesis)."""
    names = [re.escape(module)] + ([r"(?<![\w./-])gitops"] if module.endswith(".gitops") else [])
    pattern = re.compile(rf"(?:{'|'.join(names)})[ \t]+([^`\n#|;&)]*)")
    for path in DOCS:
        for match in pattern.finditer(text_of(path).replace("\\\n", " ")):
            tokens = match.group(1).split()
            if tokens:
                yield path, tokens


def test_every_runner_command_the_docs_quote_is_an_operation_and_flags_the_runner_knows() -> None:
    from margin_special_keys.gitops.__main__ import main

    usage = help_of(main, [])
    choices = re.search(r"\{([a-z,-]+)\}", usage)
    assert choices is not None
    operations = set(choices.group(1).split(","))
    flags = set(re.findall(r"(--[a-z-]+)", usage))
    seen = []
    for path, tokens in quoted_commands("margin_special_keys.gitops"):
        operation = tokens[0]
        if operation.startswith("--") or not re.fullmatch(r"[a-z-]+", operation):
            continue
        assert operation in operations, f"{path.name}: gitops {' '.join(tokens)}"
        unknown = [t for t in tokens[1:] if t.startswith("--") and t.split("=")[0] not in flags]
        assert unknown == [], f"{path.name}: gitops {' '.join(tokens)}"
        seen.append(operation)
    assert operations <= set(seen)  # every operation is documented somewhere


def test_every_sandbox_and_credentials_command_the_docs_quote_exists_with_its_flags() -> None:
    from margin_special_keys.credentials import main as credentials
    from margin_special_keys.sandbox.__main__ import main as sandbox

    checked = 0
    for module, main in (("margin_special_keys.sandbox", sandbox),
                         ("margin_special_keys.credentials", credentials)):
        for path, tokens in quoted_commands(module):
            words = [t for t in tokens if not t.startswith("-")][:2]
            command = words[:2] if words[:1] == ["account"] else words[:1]
            usage = help_of(main, command)
            flags = set(re.findall(r"(--[a-z-]+)", usage))
            unknown = [t for t in tokens if t.startswith("--") and t.strip("[]") not in flags]
            assert unknown == [], f"{path.name}: {module} {' '.join(tokens)}"
            checked += 1
    assert checked >= 5


def test_every_environment_variable_the_docs_name_is_one_the_code_reads() -> None:
    named = {(path.name, var) for path in DOCS
             for var in re.findall(r"\b((?:BINANCE|MARGIN_SPECIAL_KEYS)_[A-Z_]+)\b", text_of(path))}
    assert named
    assert sorted((doc, var) for doc, var in named if f'"{var}"' not in CODE) == []


REPO_TOP = ("providers/", "tests/", "tools/", "devtools/", "docs/", "examples/", "templates/", "bench/")


def test_every_repository_path_the_docs_quote_exists() -> None:
    missing = []
    for path in DOCS:
        for quoted in re.findall(r"`([A-Za-z0-9_./-]+(?:::[A-Za-z0-9_]+)?)`", text_of(path)):
            file, _, test = quoted.partition("::")
            if not file.startswith(REPO_TOP):
                continue
            target = ROOT / file
            if not target.exists():
                missing.append((path.name, quoted))
            elif test and f"def {test}(" not in target.read_text():
                missing.append((path.name, quoted))
    assert missing == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", text_of(path)):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                broken.append((path.name, target))
            elif anchor:
                headings = re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append((path.name, target))
    assert broken == []


def test_the_exit_codes_the_docs_list_are_the_runners() -> None:
    from margin_special_keys.gitops import report
    from margin_special_keys.gitops.orphans import ORPHAN, UNMANAGED, Finding

    documented = {int(code): text for code, text in
                  re.findall(r"^- `(\d)`: (.+)$", block(ROOT / "docs" / "pipelines.md", "exit-codes"), re.M)}

    def code_of(operation: str, **result: Any) -> int:
        return report.exit_code([report.StackResult(stack="s", operation=operation, **result)],
                                operation)

    def finding(verdict: str) -> Finding:
        return Finding("k", "n", "cross margin", verdict, "why")

    # What each documented code means, exercised: the code the runner returns for that case.
    cases = {
        0: (code_of("up"), "all good"),
        1: (code_of("up", ok=False), "failed"),
        2: (code_of("drift", drifted=True), "drift"),
        3: (code_of("orphans", orphans=[finding(ORPHAN)]), "orphans to act on"),
        4: (code_of("orphans", orphans=[finding(UNMANAGED)]), "not this project's"),
        5: (code_of("up", busy="locked"), "busy"),
    }
    assert sorted(documented) == sorted(cases)
    for code, (returned, words) in cases.items():
        assert returned == code and words in documented[code], (code, documented[code])
    docstring = Path(report.__file__).with_name("__main__.py").read_text()
    assert all(f"{code} " in docstring for code in cases if code)


def _settings(config: dict[str, str], environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from margin_special_keys.settings import read_settings

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    given = {"binance:apiKey": "A" * 64, "binance:privateKey": pem, **config}
    return read_settings(given.get, environ or {})


def test_the_provider_settings_table_is_what_the_settings_accept() -> None:
    from margin_special_keys.errors import ConfigurationError
    from margin_special_keys.settings import DEFAULT_BASE_URL

    rows = rows_by_name("configuration.md", "settings")
    settings_source = (ROOT / "providers" / "margin_special_keys" / "settings.py").read_text()
    for name, row in rows.items():
        env = row[1].strip("`")
        if env:  # the environment fallback named is the one the code reads for this setting
            assert f'get("{name.split(":")[1]}", "{env}")' in settings_source, name
    assert rows["binance:baseUrl"][2] == f"`{DEFAULT_BASE_URL}`"
    attributes = {"binance:recvWindow": "recv_window_ms", "binance:requestTimeout": "timeout_seconds",
                  "binance:otherApiKeys": "other_api_keys"}
    for name, attribute in attributes.items():
        default = int(rows[name][2].strip("`"))
        bounds = re.fullmatch(r"(\d+) to (\d+)", rows[name][3])
        assert bounds is not None, rows[name]
        low, high = int(bounds[1]), int(bounds[2])
        assert getattr(_settings({}), attribute) == default, name
        for value in (low, high):
            assert getattr(_settings({name: str(value)}), attribute) == value, name
        for value in (low - 1, high + 1):
            with pytest.raises(ConfigurationError):
                _settings({name: str(value)})


def test_the_environment_settings_table_is_what_the_settings_accept() -> None:
    from margin_special_keys.errors import ConfigurationError

    rows = rows_by_name("configuration.md", "environment")
    assert set(rows) == {"BINANCE_ALLOW_BASE_URL", "BINANCE_MAX_RECV_WINDOW",
                         "BINANCE_USE_ENVIRONMENT_PROXY", "MARGIN_SPECIAL_KEYS_TRUSTED_STACKS"}
    # BINANCE_MAX_RECV_WINDOW: default 5000, at most 60000.
    cap = rows["BINANCE_MAX_RECV_WINDOW"]
    assert cap[1] == "`5000`" and "1 to 60000" in cap[2]
    with pytest.raises(ConfigurationError):
        _settings({"binance:recvWindow": "5001"})
    assert _settings({"binance:recvWindow": "60000"},
                     {"BINANCE_MAX_RECV_WINDOW": "60000"}).recv_window_ms == 60000
    with pytest.raises(ConfigurationError):
        _settings({}, {"BINANCE_MAX_RECV_WINDOW": "60001"})
    # BINANCE_USE_ENVIRONMENT_PROXY: false unless the run says true; never from stack config.
    assert rows["BINANCE_USE_ENVIRONMENT_PROXY"][1] == "`false`"
    assert _settings({}).use_environment is False
    assert _settings({}, {"BINANCE_USE_ENVIRONMENT_PROXY": "true"}).use_environment is True
    with pytest.raises(ConfigurationError):
        _settings({"binance:useEnvironmentProxy": "true"})
    # BINANCE_ALLOW_BASE_URL: a loopback sandbox only when the run names it.
    sandbox = {"binance:baseUrl": "http://127.0.0.1:37063"}
    with pytest.raises(ConfigurationError):
        _settings(sandbox)
    assert _settings(sandbox, {"BINANCE_ALLOW_BASE_URL": "http://127.0.0.1:37063"}).base_url \
        == "http://127.0.0.1:37063"


def test_the_stack_entry_table_names_every_option_stack_config_takes() -> None:
    from margin_special_keys import fields

    documented = [row[0].strip("`") for row in table_rows(block(ROOT / "docs" / "configuration.md", "entry"))]
    assert documented == ["name", *fields.OPTIONS]


def test_the_sandbox_faults_admin_header_and_dialects_are_the_servers() -> None:
    from margin_special_keys.sandbox.dialects import CHOICES
    from margin_special_keys.sandbox.faults import ACTIONS
    from margin_special_keys.sandbox.server import ADMIN_TOKEN_FILE, ADMIN_TOKEN_HEADER

    contributing = text_of(ROOT / "CONTRIBUTING.md")
    documented = re.findall(r"^- `([a-z_]+)`:", block(ROOT / "CONTRIBUTING.md", "faults"), re.M)
    assert documented == list(ACTIONS)
    assert ADMIN_TOKEN_HEADER in contributing and f"`{ADMIN_TOKEN_FILE}`" in contributing
    assert all(f"`{switch}`" in contributing for switch in CHOICES)
    server = (ROOT / "providers" / "margin_special_keys" / "sandbox" / "server.py").read_text()
    methods = r"`(?:GET|POST|DELETE)(?:`, `(?:GET|POST|DELETE))? (/admin/[a-z-]+)"
    for route in re.findall(methods, contributing):
        assert f'"{route}' in server, route
    for path in DOCS:  # the old names of the fault actions, and of the admin routes, are gone
        assert not re.search(r"act-then-(5xx|drop)", text_of(path)), path.name


def test_every_make_target_the_docs_name_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {(path.name, t) for path in DOCS for t in re.findall(r"`make ([a-z-]+)`|^ {4,}make ([a-z-]+)\b",
                                                                  text_of(path), re.M) for t in t if t}
    assert sorted((doc, t) for doc, t in named if t not in targets) == []


def test_the_templates_requirement_admits_this_version_from_no_url() -> None:
    import tomllib

    from packaging.requirements import Requirement

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    template = ROOT / "templates" / "special-keys" / "requirements.txt"
    lines = [line for line in template.read_text().splitlines() if line.strip() and not line.startswith("#")]
    [requirement] = [Requirement(line) for line in lines]
    assert requirement.name == "margin-special-keys" and requirement.url is None
    assert requirement.specifier.contains(version), (str(requirement.specifier), version)
    assert f"margin-special-keys{requirement.specifier}" in text_of(ROOT / "docs" / "install.md") \
        or f"`{lines[0]}`" in text_of(ROOT / "docs" / "install.md")


def test_the_readme_is_read_in_order_and_keeps_the_two_commands() -> None:
    readme = text_of(ROOT / "README.md")
    assert "make demo" in readme and "make test" in readme
    assert len(readme.splitlines()) <= 220
    headings = re.findall(r"^## (.+)$", readme, re.M)
    assert headings.index("Try it on the sandbox") < headings.index("Use it on a real account") \
        < headings.index("Tests")
    # The demo's output sits right below the demo.
    demo = readme.split("## Try it on the sandbox", 1)[1].split("\n## ", 1)[0]
    assert "<!-- captured: docs/captured/demo-up.txt" in demo


def test_no_doc_shows_a_signed_request_or_a_private_key() -> None:
    for path in [*DOCS, *(ROOT / "docs" / "captured").iterdir()]:
        text = text_of(path)
        assert "signature=" not in text, path.name
        assert not re.search(r"-----BEGIN (OPENSSH |RSA |EC )?PRIVATE KEY-----", text), path.name


def test_every_captured_block_is_the_captured_file_or_its_lines() -> None:
    blocks = 0
    for path in DOCS:
        for file, excerpt, body in re.findall(
                r"<!-- captured: (\S+)( \(excerpt\))? -->\n```text\n(.*?)```", text_of(path), re.S):
            captured = (ROOT / file).read_text()
            if excerpt:
                lines = set(captured.splitlines())
                assert [ln for ln in body.splitlines() if ln not in lines] == [], (path.name, file)
            else:
                assert body == captured, (path.name, file)
            blocks += 1
    assert blocks >= 4


def test_every_config_path_the_docs_set_carries_its_namespace() -> None:
    """`pulumi config set --path 'keys[0].name'` writes the project's namespace, which the program
    never reads: the docs write the full key, and show the short one only as the mistake it is."""
    short = []
    for path in DOCS:
        for key in re.findall(r"--path '([^']+)'", text_of(path)):
            if ":" not in key and not (key == "keys[0].name" and path.name in
                                       ("troubleshooting.md", "CHANGELOG.md", "configuration.md")):
                short.append((path.name, key))
    assert short == []
