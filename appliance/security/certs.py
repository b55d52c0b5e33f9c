"""A small local certificate authority and the gateway's HTTPS certificate, under <data_dir>/certs/.

Browsers allow the microphone only on HTTPS (or localhost), so a box reached over the LAN serves TLS. The CA is
made once and trusted once per device; the server certificate it signs names the box's hostname,
`<hostname>.local`, its LAN addresses, localhost and 127.0.0.1, and is made again when those change or when it
nears expiry. Keys are 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.config import MynahConfig

log = logging.getLogger(__name__)

CA_DAYS = 3650
SERVER_DAYS = 397  # browsers refuse longer-lived server certificates
RENEW_BEFORE = dt.timedelta(days=30)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)
ALL_INTERFACES = ("0.0.0.0", "::", "")  # noqa: S104 (names the wildcard; binds nothing)


@dataclass(frozen=True)
class CertPaths:
    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The server certificate followed by the CA's: what uvicorn sends."""
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"


@dataclass(frozen=True)
class Names:
    """What the server certificate must name."""

    dns: frozenset[str]
    ips: frozenset[IpAddress]


def cert_paths(config: MynahConfig) -> CertPaths:
    return CertPaths(config.paths.data_dir / "certs")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_enabled(config: MynahConfig) -> bool:
    """HTTPS whenever the gateway listens beyond this machine, unless [security] tls says otherwise."""
    if config.security.tls != "auto":
        return config.security.tls == "on"
    return not is_loopback_host(config.gateway.host)


def lan_addresses() -> set[IpAddress]:
    """This box's addresses as the LAN sees them, best effort (no extra dependency, no packet sent)."""
    found: set[IpAddress] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
    except (OSError, ValueError):
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # UDP connect sends nothing: it only picks the outgoing interface
                found.add(ipaddress.ip_address(s.getsockname()[0].split("%")[0]))
        except (OSError, ValueError):
            pass
    return {ip for ip in found if not ip.is_loopback and not ip.is_link_local and not ip.is_unspecified}


def wanted_names(config: MynahConfig) -> Names:
    host = socket.gethostname().split(".")[0] or "mynah"
    dns = {host, f"{host}.local", "localhost"}
    ips: set[IpAddress] = {ipaddress.ip_address("127.0.0.1"), *lan_addresses()}
    configured = config.gateway.host
    if configured not in ALL_INTERFACES:
        try:
            ips.add(ipaddress.ip_address(configured))
        except ValueError:
            dns.add(configured)
    return Names(frozenset(dns), frozenset(ips))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write aside, then rename: a reader never sees half a key."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pkcs8, none = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, none)


def _make_ca(paths: CertPaths, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Mynah local CA ({socket.gethostname()})")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(paths.ca_key, _key_pem(key), 0o600)
    _write(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("made a local certificate authority at %s", paths.ca_cert)
    return cert, key


def _load_ca(paths: CertPaths, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if paths.ca_cert.exists() and paths.ca_key.exists():
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc - RENEW_BEFORE > now:
            return cert, key
    return _make_ca(paths, now)


def certified_names(cert: x509.Certificate) -> Names:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Names(frozenset(), frozenset())
    ips = frozenset(ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IpAddress))
    return Names(frozenset(san.get_values_for_type(x509.DNSName)), ips)


def needs_renewal(cert: x509.Certificate, ca: x509.Certificate, names: Names, now: dt.datetime) -> str:
    """Why the server certificate must be made again ("" when it is still good)."""
    if cert.issuer != ca.subject:
        return "the certificate authority changed"
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return "it expires soon"
    held = certified_names(cert)
    if not (names.dns <= held.dns and names.ips <= held.ips):
        return "the box's names or addresses changed"
    return ""


def _make_server(paths: CertPaths, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: Names,
                 now: dt.datetime) -> None:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    first = sorted(names.dns - {"localhost"}) or ["localhost"]
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names.dns)]
    alt += [x509.IPAddress(ip) for ip in sorted(names.ips, key=str)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths.server_key, _key_pem(key), 0o600)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    _write(paths.server_cert, chain, 0o644)


def ensure_certificates(config: MynahConfig, *, renew: bool = False, now: dt.datetime | None = None) -> CertPaths:
    """Make the CA (once) and the server certificate (when missing, stale or `renew`); return their paths."""
    now = now or dt.datetime.now(dt.UTC)
    paths = cert_paths(config)
    paths.folder.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.folder, 0o700)
    ca, ca_key = _load_ca(paths, now)
    names = wanted_names(config)
    why = "asked to" if renew else "there is none"
    if paths.server_cert.exists() and paths.server_key.exists() and not renew:
        why = needs_renewal(x509.load_pem_x509_certificate(paths.server_cert.read_bytes()), ca, names, now)
    if why:
        _make_server(paths, ca, ca_key, names, now)
        log.info("made the HTTPS certificate (%s) for %s", why, ", ".join(sorted(names.dns | set(map(str, names.ips)))))
    return paths


def fingerprint(cert_path: Path) -> str:
    """The SHA-256 fingerprint as browsers show it: AA:BB:..."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def own_origins(config: MynahConfig) -> list[str]:
    """The appliance's own browser origins: every name and address it answers on, with its scheme and port."""
    scheme = "https" if tls_enabled(config) else "http"
    names = wanted_names(config)
    hosts = sorted(names.dns) + [f"[{ip}]" if ip.version == 6 else str(ip) for ip in sorted(names.ips, key=str)]
    port = config.gateway.port
    default = 443 if scheme == "https" else 80
    return [f"{scheme}://{host}" + ("" if port == default else f":{port}") for host in hosts]
