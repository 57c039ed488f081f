"""Fixtures for the injector tests: certificates made here, and a running
`switchyard inject-webhook` on a free loopback port."""

import datetime
import ipaddress
import json
import os
import pathlib
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _cargo_bin():
    """The debug binary wherever cargo builds it: CARGO_TARGET_DIR, a cargo config's
    build.target-dir, or target/ (as `cargo metadata` reports it)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return os.path.join(json.loads(meta.stdout)["target_directory"], "debug", "switchyard")


BIN = os.environ.get("SWITCHYARD_BIN") or _cargo_bin()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="switchyard-test-ca"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(ca, cn="localhost"):
    """A server certificate for 127.0.0.1 signed by `ca`, as (cert PEM, key PEM)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        ]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class Webhook:
    """A running `switchyard inject-webhook`; `addr` is (host, port)."""

    def __init__(self, args, cert_path, key_path):
        self.proc = subprocess.Popen(
            [BIN, "--log-format", "json", "inject-webhook", "--listen", "127.0.0.1:0",
             "--tls-cert", str(cert_path), "--tls-key", str(key_path), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.logs = []
        self.addr = None
        for line in self.proc.stderr:
            self.logs.append(line)
            fields = _fields(line)
            if fields.get("message") == "inject-webhook listening":
                host, port = fields["addr"].rsplit(":", 1)
                self.addr = (host, int(port))
                break
        if self.addr is None:
            raise RuntimeError("inject-webhook did not start:\n" + "".join(self.logs))
        # Keep reading so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.logs.append(line)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)


def _fields(line):
    try:
        return json.loads(line).get("fields", {})
    except ValueError:
        return {}


@pytest.fixture(scope="session")
def ca():
    return make_ca()


@pytest.fixture(scope="session")
def tls_files(ca, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = make_leaf(ca)
    (directory / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    (directory / "tls.crt").write_bytes(cert)
    (directory / "tls.key").write_bytes(key)
    return directory


SIDECAR_ARGS = [
    "--sidecar-image", "example/switchyard:test",
    "--keys-secret", "llm-keys",
    "--sidecar-env", "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel.observability:4317",
]


@pytest.fixture(scope="session")
def webhook(tls_files):
    hook = Webhook(SIDECAR_ARGS, tls_files / "tls.crt", tls_files / "tls.key")
    yield hook
    hook.stop()


@pytest.fixture
def fresh_webhook(tmp_path):
    """Starts a webhook on files in `tmp_path`; the test writes the files first."""
    started = []

    def start(cert_path, key_path, args=SIDECAR_ARGS):
        hook = Webhook(args, cert_path, key_path)
        started.append(hook)
        return hook

    yield start
    for hook in started:
        hook.stop()


ROOT = pathlib.Path(__file__).resolve().parents[2]
