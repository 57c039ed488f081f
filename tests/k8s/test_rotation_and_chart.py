"""Certificate rotation without a restart, and the chart agreeing with the binary."""

import os
import shutil
import socket
import ssl
import subprocess

import yaml
from cryptography import x509

from conftest import ROOT, SIDECAR_ARGS, Webhook, make_ca, make_leaf
from validate_manifests import validate_object

K8S_VERSION = os.environ.get("K8S_VALIDATE_VERSION", "1.33.0")
HELM = shutil.which("helm") or str(ROOT / "target" / "packaging-tools" / "helm")


def served_certificate(addr):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(addr, timeout=10) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def publish(directory, cert, key):
    """Swaps in a new pair the way the kubelet updates a mounted Secret: a new timestamped
    directory, then an atomic rename of the `..data` symlink."""
    version = directory / f"..2{len(list(directory.glob('..2*')))}"
    version.mkdir()
    (version / "tls.crt").write_bytes(cert)
    (version / "tls.key").write_bytes(key)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(version.name)
    os.replace(tmp, directory / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path, fresh_webhook):
    ca = make_ca()
    first = make_leaf(ca, cn="first")
    second = make_leaf(ca, cn="second")
    publish(tmp_path, *first)
    hook = fresh_webhook(tmp_path / "tls.crt", tmp_path / "tls.key")
    assert served_certificate(hook.addr).subject.rfc4514_string() == "CN=first"

    publish(tmp_path, *second)
    assert served_certificate(hook.addr).subject.rfc4514_string() == "CN=second"
    assert hook.proc.poll() is None, "still the same process"

    # A broken pair keeps the last good certificate.
    (tmp_path / "tls.key").unlink()
    (tmp_path / "tls.key").write_bytes(b"not a key")
    assert served_certificate(hook.addr).subject.rfc4514_string() == "CN=second"


def helm_template(*args):
    out = subprocess.run([HELM, "template", "sy", str(ROOT / "helm" / "switchyard"),
                          "--namespace", "switchyard", *args],
                         check=True, capture_output=True, text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_the_chart_runs_the_binary_with_flags_it_accepts(tmp_path, fresh_webhook):
    ca = make_ca()
    cert, key = make_leaf(ca)
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    for values in [None, *sorted((ROOT / "helm" / "switchyard" / "ci").glob("*-values.yaml"))]:
        docs = helm_template(*(["-f", str(values)] if values else []))
        (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[1] == "inject-webhook"
        kept = [a for a in args[2:] if not a.startswith(("--listen=", "--tls-"))]
        hook = fresh_webhook(tmp_path / "tls.crt", tmp_path / "tls.key", kept)
        assert hook.proc.poll() is None, f"{values}: {hook.logs}"


def test_the_sidecar_template_renders_the_injected_container(tmp_path):
    """A user's own chart adds the sidecar with the `switchyard.sidecar` template."""
    chart = tmp_path / "app"
    (chart / "templates").mkdir(parents=True)
    (chart / "charts").mkdir()
    shutil.copytree(ROOT / "helm" / "switchyard", chart / "charts" / "switchyard")
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: app\nversion: 0.1.0\n"
        "dependencies:\n  - name: switchyard\n    version: 0.1.0\n")
    (chart / "values.yaml").write_text("switchyard: {}\n")
    (chart / "templates" / "deployment.yaml").write_text("""
{{- $sy := dict "root" (dict "Values" .Values.switchyard "Chart" .Subcharts.switchyard.Chart) "policy" "configmap/llm-policy" }}
apiVersion: apps/v1
kind: Deployment
metadata: {name: chat}
spec:
  selector: {matchLabels: {app: chat}}
  template:
    metadata: {labels: {app: chat}}
    spec:
      initContainers:
        {{- include "switchyard.sidecar" $sy | nindent 8 }}
      containers:
        - name: chat
          image: example/chat:1
          env:
            - {name: OPENAI_BASE_URL, value: "http://127.0.0.1:4000/v1"}
      volumes:
        {{- include "switchyard.keysVolume" $sy | nindent 8 }}
""")
    out = subprocess.run([HELM, "template", "app", str(chart), "--show-only",
                          "templates/deployment.yaml"], check=True, capture_output=True, text=True)
    (deployment,) = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert validate_object(deployment, K8S_VERSION) is None
    pod = deployment["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["name"] == "switchyard" and sidecar["restartPolicy"] == "Always"
    assert sidecar["args"][-2:] == ["--policy-configmap", "llm-policy"]
    assert pod["volumes"][0]["secret"]["secretName"] == "switchyard-keys"


def test_manual_example_matches_the_injector():
    from gen_manual_example import render

    committed = (ROOT / "deploy" / "examples" / "app-with-sidecar.yaml").read_text()
    assert committed == render(), "regenerate with tests/k8s/gen_manual_example.py"


def closed_by_server(sock):
    """Blocks until the peer closes (recv returns b''); the socket's timeout only bounds
    the wait so a regression fails instead of hanging."""
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def test_a_silent_peer_is_disconnected_after_the_handshake_timeout(tls_files, fresh_webhook):
    hook = fresh_webhook(tls_files / "tls.crt", tls_files / "tls.key",
                         args=[*SIDECAR_ARGS, "--handshake-timeout", "300ms"])
    with socket.create_connection(hook.addr) as silent:
        assert closed_by_server(silent), "a peer that never starts TLS keeps its connection"

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(hook.addr) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
            assert closed_by_server(tls), "a request head that stalls keeps its connection"
    # The webhook still serves after shedding both.
    assert served_certificate(hook.addr).subject
