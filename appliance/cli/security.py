"""`mynah certs` and `mynah devices`: the box's certificate authority, pairing codes and paired devices.

These work on the files directly (the database and the runtime directory, both the owner's only), so they need
no token and work whether or not Mynah is running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from cryptography import x509

from appliance.config import MynahConfig
from appliance.security.certs import certified_names, ensure_certificates, fingerprint, tls_enabled
from appliance.security.pairing import PairingCode, new_code
from appliance.store.db import connect
from appliance.store.devices import DeviceStore

TRUST_HOWTO = """Trust it once on each device that opens Mynah (copy ca.pem to it first):
  Android: Settings > Security > Encryption & credentials > Install a certificate > CA certificate
  iPhone/iPad: open the file, install the profile, then Settings > General > About > Certificate Trust Settings
  macOS: open it in Keychain Access (System keychain), then set Trust to Always Trust
  Windows: open it > Install Certificate > Local Machine > Trusted Root Certification Authorities
  Linux (Chrome): Settings > Privacy and security > Security > Manage certificates > Authorities > Import
  Scripts: curl --cacert ca.pem ..., httpx.Client(verify="ca.pem")
Check that the fingerprint the device shows is the one above."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = commands.add_parser("certs", help="the HTTPS certificate authority: where it is and how to trust it")
    certs.add_argument("--renew", action="store_true", help="make the server certificate again now")
    devices = commands.add_parser("devices", help="paired devices: list, revoke, or show a fresh pairing code")
    actions = devices.add_subparsers(dest="devices_command", metavar="ACTION")
    actions.add_parser("list", help="every paired device (the default)")
    revoke = actions.add_parser("revoke", help="revoke a device: its token stops working at once")
    revoke.add_argument("device_id")
    actions.add_parser("pair-code", help="a fresh one-time pairing code (replaces any earlier one)")
    add = actions.add_parser("add", help="pair a device from this box (its owner) and print its token")
    add.add_argument("name", help="what to call the device, e.g. 'this box' or 'scripts'")
    add.add_argument("--save", type=Path, help="also write the token to this file (owner-only, 0600)")


def pairing_code(config: MynahConfig) -> PairingCode:
    return new_code(config.paths.runtime_dir, config.security.pairing_code_ttl_s)


def describe_code(code: PairingCode) -> str:
    minutes = max(0.0, code.expires_at - time.time()) / 60
    return f"pairing code: {code.code} (valid {minutes:.0f} min, once; `mynah devices pair-code` makes another)"


def certs(config: MynahConfig, *, renew: bool) -> int:
    paths = ensure_certificates(config, renew=renew)
    server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    names = certified_names(server)
    print(f"certificate authority: {paths.ca_cert}")
    print(f"SHA-256 fingerprint:   {fingerprint(paths.ca_cert)}")
    print(f"server certificate:    {', '.join(sorted(names.dns) + sorted(map(str, names.ips)))}")
    print(f"                       valid until {server.not_valid_after_utc:%Y-%m-%d} UTC")
    if not tls_enabled(config):
        print('HTTPS is off: gateway.host is a loopback address ([security] tls = "on" forces it)')
    elif renew:
        print("the gateway serves a renewed certificate once restarted (mynah down; mynah up)")
    print(TRUST_HOWTO)
    return 0


def devices(config: MynahConfig, args: argparse.Namespace) -> int:
    action = args.devices_command or "list"
    if action == "pair-code":
        print(describe_code(pairing_code(config)))
        return 0
    store = DeviceStore(connect(config.paths.data_dir / "mynah.db"))
    if action == "add":
        device, token = store.pair(args.name)
        if args.save is not None:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            args.save.touch(mode=0o600, exist_ok=True)
            args.save.chmod(0o600)
            args.save.write_text(token + "\n", encoding="utf-8")
        print(token)
        print(f"paired {device.device_id} ({device.name}); send it as Authorization: Bearer <token>", file=sys.stderr)
        return 0
    if action == "revoke":
        device = store.revoke(args.device_id)
        print(f"revoked {device.device_id} ({device.name})")
        return 0
    listed = store.list()
    if not listed:
        print("no paired devices: pair one with the code `mynah devices pair-code` shows")
    for device in listed:
        seen = _when(device.last_seen_at) if device.last_seen_at else "never"
        state = f"revoked {_when(device.revoked_at)}" if device.revoked_at else "active"
        print(f"{device.device_id}  {device.name[:30]:30}  paired {_when(device.created_at)}  seen {seen}  {state}")
    return 0


def _when(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at or 0).strftime("%Y-%m-%d %H:%M")
