"""Command line of the sandbox exchange.

    python -m margin_special_keys.sandbox serve --data-dir DIR [--host 127.0.0.1] [--port N]
        [--uid-weight-limit N] [--dialect SWITCH=VALUE,...]
    python -m margin_special_keys.sandbox account create --data-dir DIR [--type TYPE]
        [--key-type HMAC|RSA|ED25519] [--isolated-symbols BTCUSDT,ETHUSDT] [--pem-out FILE [--overwrite]]
        [--restrictions enableSpotAndMarginTrading=false,...]
    python -m margin_special_keys.sandbox keys --data-dir DIR
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import threading
from pathlib import Path

from . import files
from .dialects import CHOICES, Dialect
from .models import ACCOUNT_TYPES, DEFAULT_ISOLATED_SYMBOLS, DEFAULT_RESTRICTIONS, KEY_TYPES, Exchange
from .server import AdminTokenError, make_server
from .store import Store


def _serve(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    if not args.allow_non_loopback and not ipaddress.ip_address(args.host).is_loopback:
        print(
            f"refusing to listen on {args.host}: the sandbox binds loopback unless"
            " --allow-non-loopback is given",
            file=sys.stderr,
        )
        return 2
    try:
        dialect = Dialect.parse(args.dialect)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The same data dir keeps its port across restarts, so every stack's binance:baseUrl pointed at
    # it stays right; --port 0 asks for a new one.
    port_file = data_dir / "port"
    port = args.port
    if port is None:
        port = int(port_file.read_text()) if port_file.exists() else 0
    try:
        server = make_server(data_dir, args.host, port, args.uid_weight_limit, args.max_api_keys,
                             dialect, args.rate_window_ms)
    except AdminTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{port} ({exc.strerror}); pass --port 0 for"
              " another port (stacks pointed at the old one need binance:baseUrl changed)",
              file=sys.stderr)
        return 2
    port_file.write_text(f"{server.server_address[1]}\n")
    url_file = data_dir / "url"
    tmp = data_dir / "url.tmp"
    tmp.write_text(server.base_url + "\n")
    os.replace(tmp, url_file)  # readers never see a half-written URL
    (data_dir / "pid").write_text(f"{os.getpid()}\n")
    print(f"sandbox exchange listening on {server.base_url} (data in {data_dir})", flush=True)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.exchange.store.close()
        url_file.unlink(missing_ok=True)
    return 0


def _restrictions(text: str) -> dict[str, bool]:
    """`enableSpotAndMarginTrading=false,ipRestrict=true` -> flags of the account's key."""
    out: dict[str, bool] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or name not in DEFAULT_RESTRICTIONS or value not in ("true", "false"):
            raise ValueError(f"--restrictions takes NAME=true|false with NAME one of"
                             f" {', '.join(DEFAULT_RESTRICTIONS)}")
        out[name] = value == "true"
    return out


def _account_create(args: argparse.Namespace) -> int:
    symbols = tuple(s.strip() for s in args.isolated_symbols.split(",") if s.strip())
    pem_out = Path(args.pem_out) if args.pem_out and args.key_type != "HMAC" else None
    if pem_out is not None and os.path.lexists(pem_out) and not args.overwrite:
        # Refused before the account is made: its private key would have nowhere to go.
        print(f"error: {pem_out} exists; pass --overwrite to replace it with a new file"
              " (mode 0600)", file=sys.stderr)
        return 2
    exchange = Exchange(Store(Path(args.data_dir)))
    try:
        created = exchange.create_account(args.type, args.key_type, symbols,
                                          _restrictions(args.restrictions))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    credentials = created.credentials()
    if pem_out is not None and created.private_key_pem:
        # Ready for `pulumi config set --secret binance:privateKey < FILE`. A new file of mode
        # 0600 either way: made exclusively, or (--overwrite) renamed over the old one, whose
        # mode, inode and symlink target are never reused.
        try:
            if args.overwrite:
                files.replace(pem_out, created.private_key_pem.encode())
            else:
                files.create_new(pem_out, created.private_key_pem.encode())
        except OSError as exc:
            print(f"error: cannot write {pem_out} ({exc.strerror}); account"
                  f" {created.account.account_id} was made, its private key is not kept",
                  file=sys.stderr)
            return 2
        credentials["privateKey"] = f"written to {pem_out}"
    print(json.dumps(credentials, indent=2))
    return 0


def _keys(args: argparse.Namespace) -> int:
    exchange = Exchange(Store(Path(args.data_dir)))
    print(json.dumps(exchange.all_special_keys(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m margin_special_keys.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the exchange over HTTP")
    serve.add_argument("--data-dir", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None,
                       help="default: the port this data dir used before, else any free one")
    serve.add_argument("--allow-non-loopback", action="store_true")
    serve.add_argument("--uid-weight-limit", type=int, default=None,
                       help="UID request weight per minute per endpoint (Binance: 180000)")
    serve.add_argument("--rate-window-ms", type=int, default=None,
                       help="tests only: rate-limit windows of this length, each account's starting"
                            " at its first request (Binance: calendar minutes)")
    serve.add_argument("--max-api-keys", type=int, default=None,
                       help="API keys per account (Binance: 30); raised only to benchmark")
    serve.add_argument("--dialect", default="",
                       help="readings of undocumented behaviour, e.g. edit-ip=append,missing-key=-2008"
                            f" (switches: {', '.join(CHOICES)})")
    serve.set_defaults(run=_serve)

    account = commands.add_parser("account", help="manage sandbox accounts")
    account_commands = account.add_subparsers(dest="account_command", required=True)
    create = account_commands.add_parser("create", help="create an account and its API key")
    create.add_argument("--data-dir", required=True)
    create.add_argument("--type", default="CROSS_MARGIN_CLASSIC", choices=ACCOUNT_TYPES)
    create.add_argument("--key-type", default="HMAC", choices=tuple(KEY_TYPES))
    create.add_argument("--isolated-symbols", default=",".join(DEFAULT_ISOLATED_SYMBOLS))
    create.add_argument("--restrictions", default="",
                        help="the account key's API restrictions, e.g. enableSpotAndMarginTrading=false")
    create.add_argument("--pem-out", help="write the account key's private key PEM to this new file"
                        " (mode 0600), ready for `pulumi config set --secret binance:privateKey < FILE`")
    create.add_argument("--overwrite", action="store_true",
                        help="with --pem-out: replace an existing file by a new one (mode 0600)")
    create.set_defaults(run=_account_create)

    keys = commands.add_parser("keys", help="print every special key as JSON")
    keys.add_argument("--data-dir", required=True)
    keys.set_defaults(run=_keys)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
