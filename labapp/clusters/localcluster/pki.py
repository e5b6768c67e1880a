"""Certificates and keys for one local cluster.

One CA signs a serving certificate for the API server (and KWOK's kubelet
endpoint) and a client certificate for the admin identity; a separate key
signs service-account tokens. Files are written once and reused, so a
cluster keeps its identity across `down` and `up`; only the serving
certificate is issued again (by the same CA) when the names it must carry
change (`extra_sans`: e.g. the compose service name `localcluster`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=3650)
SERVING_DNS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]
SERVING_IPS = ["127.0.0.1", "::1", "10.96.0.1"]
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


def san_entry(value: str) -> x509.GeneralName:
    """One extra name for the serving certificate: an IP address or a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _DNS_NAME.match(value):
        raise ValueError(f"{value!r} is neither an IP address nor a lower-case DNS name")
    return x509.DNSName(value)


def serving_names(extra_sans: tuple[str, ...] = ()) -> list[x509.GeneralName]:
    """Every name the API server's certificate carries: the usual ones, then the extra."""
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVING_DNS]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVING_IPS]
    for extra in extra_sans:
        entry = san_entry(extra)
        if entry not in names:
            names.append(entry)
    return names


def certificate_names(path: Path) -> set[x509.GeneralName]:
    """The subject alternative names of a PEM certificate (empty if it has none)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(extension.value)


@dataclass(frozen=True)
class ClusterPKI:
    directory: Path
    # Names (DNS or IP) the serving certificate carries besides the usual ones.
    extra_sans: tuple[str, ...] = ()

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "serving.key"

    @property
    def admin_cert(self) -> Path:
        return self.directory / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.directory / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    def ensure(self) -> None:
        """Create whatever is missing; never replace what exists."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            ca_key = _new_key()
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labapp-local-ca")])
            ca = (
                _builder(name, name, ca_key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(_key_usage(cert_sign=True), critical=True)
                .sign(ca_key, hashes.SHA256())
            )
            _write_pair(self.ca_cert, ca, self.ca_key, ca_key)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        issuer_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(issuer_key, rsa.RSAPrivateKey):
            raise ValueError(f"{self.ca_key} is not an RSA key")
        stale = self.serving_cert.exists() and certificate_names(self.serving_cert) != set(
            serving_names(self.extra_sans)
        )
        if stale or not self.serving_cert.exists():
            self._issue(
                ca_cert,
                issuer_key,
                self.serving_cert,
                self.serving_key,
                common_name="kube-apiserver",
                organisation=None,
                usage=ExtendedKeyUsageOID.SERVER_AUTH,
                with_sans=True,
            )
        if not self.admin_cert.exists():
            self._issue(
                ca_cert,
                issuer_key,
                self.admin_cert,
                self.admin_key,
                common_name="labapp-admin",
                organisation="system:masters",
                usage=ExtendedKeyUsageOID.CLIENT_AUTH,
                with_sans=False,
            )
        if not self.sa_key.exists():
            sa_key = _new_key()
            self.sa_key.write_bytes(_private_pem(sa_key))
            self.sa_key.chmod(0o600)
            self.sa_pub.write_bytes(
                sa_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )

    def _issue(
        self,
        ca_cert: x509.Certificate,
        ca_key: rsa.RSAPrivateKey,
        cert_path: Path,
        key_path: Path,
        *,
        common_name: str,
        organisation: str | None,
        usage: x509.ObjectIdentifier,
        with_sans: bool,
    ) -> None:
        key = _new_key()
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organisation:
            attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
        builder = (
            _builder(x509.Name(attributes), ca_cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if with_sans:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(serving_names(self.extra_sans)), critical=False
            )
        _write_pair(cert_path, builder.sign(ca_key, hashes.SHA256()), key_path, key)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write_pair(
    cert_path: Path, cert: x509.Certificate, key_path: Path, key: rsa.RSAPrivateKey
) -> None:
    key_path.write_bytes(_private_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
