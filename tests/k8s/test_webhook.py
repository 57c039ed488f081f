"""The injector over real HTTPS: AdmissionReviews for a corpus of pod shapes, the returned
JSONPatch applied with a JSONPatch library, and the result checked."""

import base64
import copy
import http.client
import json
import os
import ssl
import uuid

import jsonpatch
import pytest

from validate_manifests import validate_object

K8S_VERSION = os.environ.get("K8S_VALIDATE_VERSION", "1.33.0")
OPTED_IN = {"switchyard.dev/inject": "true"}
SDK_ENV = {"OPENAI_BASE_URL": "http://127.0.0.1:4000/v1",
           "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000"}


def post(webhook, ca_file, body):
    context = ssl.create_default_context(cafile=str(ca_file))
    conn = http.client.HTTPSConnection(*webhook.addr, context=context, timeout=10)
    try:
        conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def review(pod, uid=None, namespace="team"):
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }).encode()


def pod(labels=None, annotations=None, **spec):
    metadata = {"name": "app", "namespace": "team"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    spec.setdefault("containers", [{"name": "app", "image": "example/app:1"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def patch_of(response):
    raw = response.get("patch")
    if raw is None:
        return None
    assert isinstance(raw, str), "the API server expects the patch as a base64 string"
    data = base64.b64decode(raw, validate=True)
    assert response["patchType"] == "JSONPatch"
    return jsonpatch.JsonPatch(json.loads(data))


def mutate(webhook, tls_files, obj):
    uid = str(uuid.uuid4())
    answer = post(webhook, tls_files / "ca.crt", review(obj, uid))
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == uid
    assert response["allowed"] is True
    patch = patch_of(response)
    return response, (patch.apply(copy.deepcopy(obj)) if patch else obj)


def strip_injection(mutated, original):
    """`mutated` minus exactly what the injector may add; must then equal `original`."""
    out = copy.deepcopy(mutated)
    spec, before = out["spec"], original["spec"]
    for key in ("initContainers", "containers"):
        spec[key] = [c for c in spec.get(key, []) if c["name"] != "switchyard"]
        if not spec[key] and key not in before:
            del spec[key]
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] != "switchyard-keys"]
    if not spec["volumes"] and "volumes" not in before:
        del spec["volumes"]
    for container, old in zip(spec["containers"], before["containers"]):
        old_names = {e["name"] for e in old.get("env", [])}
        container["env"] = [e for e in container.get("env", [])
                            if e["name"] in old_names or e["name"] not in SDK_ENV]
        if not container["env"] and "env" not in old:
            del container["env"]
    annotations = out["metadata"].get("annotations", {})
    annotations.pop("switchyard.dev/injected", None)
    if not annotations and "annotations" not in original["metadata"]:
        out["metadata"].pop("annotations", None)
    return out


def sidecars(obj):
    spec = obj["spec"]
    return [c for c in spec.get("initContainers", []) + spec["containers"]
            if c["name"] == "switchyard"]


def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


REPLICASET_POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "generateName": "chat-7d4b9c-",
        "labels": {"app": "chat", "pod-template-hash": "7d4b9c", **OPTED_IN},
        "annotations": {"switchyard.dev/policy": "configmap/llm-policy"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "chat-7d4b9c",
                             "uid": "6c1e9a8e-0000-4000-8000-000000000001",
                             "controller": True, "blockOwnerDeletion": True}],
    },
    "spec": {
        "containers": [{
            "name": "chat", "image": "example/chat:2", "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {}, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler",
    },
}

INJECTED = {
    "single container": pod(OPTED_IN, {"switchyard.dev/policy": "fast"}),
    "no annotations": pod(OPTED_IN),
    "multi container with env and volumes": pod(
        OPTED_IN, {"switchyard.dev/policy": "configmap/llm-policy"},
        containers=[
            {"name": "api", "image": "example/api:1",
             "env": [{"name": "OPENAI_BASE_URL", "value": "https://proxy.internal/v1"},
                     {"name": "LOG", "value": "debug"}],
             "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            {"name": "worker", "image": "example/worker:1", "env": []},
        ],
        volumes=[{"name": "data", "emptyDir": {}}],
    ),
    "existing init containers and a native sidecar": pod(
        OPTED_IN, {"switchyard.dev/policy": "other-ns/policy"},
        initContainers=[
            {"name": "migrate", "image": "example/migrate:1"},
            {"name": "log-shipper", "image": "example/shipper:1", "restartPolicy": "Always"},
        ],
    ),
    "anthropic variable turned off": pod(
        OPTED_IN, {"switchyard.dev/set-anthropic-base-url": "false"}),
    "a Job's pod": pod(
        {**OPTED_IN, "batch.kubernetes.io/job-name": "nightly"}, None,
        restartPolicy="Never", containers=[{"name": "job", "image": "example/job:1"}],
    ),
    "a Deployment's pod from the ReplicaSet controller": REPLICASET_POD,
}

LEFT_ALONE = {
    "no label": pod(None),
    "opted out": pod({"switchyard.dev/inject": "false"}),
    "the injector's own pod": pod({**OPTED_IN, "switchyard.dev/injector": "true"}),
}


@pytest.mark.parametrize("name", sorted(INJECTED))
def test_opted_in_pods_get_exactly_one_sidecar_and_nothing_else_changes(webhook, tls_files, name):
    original = INJECTED[name]
    response, mutated = mutate(webhook, tls_files, original)
    assert response.get("patch") is not None, response
    assert validate_object(mutated, K8S_VERSION) is None
    (sidecar,) = sidecars(mutated)
    assert sidecar in mutated["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "example/switchyard:test"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["volumeMounts"] == [
        {"name": "switchyard-keys", "mountPath": "/etc/switchyard/keys", "readOnly": True}]
    assert env(sidecar)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability:4317"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert sidecar[probe]["httpGet"]["port"] == 4001
    annotations = original["metadata"].get("annotations") or {}
    for container, before in zip(mutated["spec"]["containers"], original["spec"]["containers"]):
        assert "volumeMounts" not in container or all(
            m["name"] != "switchyard-keys" for m in container["volumeMounts"])
        for var, value in SDK_ENV.items():
            off = annotations.get(f"switchyard.dev/set-{var.split('_')[0].lower()}-base-url") == "false"
            if var in env(before):
                assert env(container)[var] == env(before)[var], "an app's own value is kept"
            elif off:
                assert var not in env(container)
            else:
                assert env(container)[var] == value
    assert strip_injection(mutated, original) == original


def test_policy_annotation_picks_the_sidecar_source(webhook, tls_files):
    _, mutated = mutate(webhook, tls_files, INJECTED["multi container with env and volumes"])
    args = sidecars(mutated)[0]["args"]
    assert args[args.index("--policy-configmap") + 1] == "llm-policy"
    _, mutated = mutate(webhook, tls_files, INJECTED["single container"])
    args = sidecars(mutated)[0]["args"]
    assert args[args.index("--policy-resource") + 1] == "fast"


@pytest.mark.parametrize("name", sorted(LEFT_ALONE))
def test_pods_not_opted_in_are_left_alone(webhook, tls_files, name):
    response, mutated = mutate(webhook, tls_files, LEFT_ALONE[name])
    assert "patch" not in response
    assert not response.get("warnings")
    assert mutated == LEFT_ALONE[name]


def test_an_injected_pod_is_left_alone(webhook, tls_files):
    _, once = mutate(webhook, tls_files, INJECTED["single container"])
    response, twice = mutate(webhook, tls_files, once)
    assert "patch" not in response
    assert twice == once and len(sidecars(twice)) == 1


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
    review({"kind": "Pod", "spec": {"containers": "not a list"}}),
])
def test_malformed_reviews_are_allowed_with_a_warning(webhook, tls_files, body):
    response = post(webhook, tls_files / "ca.crt", body)["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert any("switchyard" in w for w in response["warnings"])


def test_a_bad_policy_annotation_is_allowed_with_a_warning(webhook, tls_files):
    response, mutated = mutate(webhook, tls_files,
                               pod(OPTED_IN, {"switchyard.dev/policy": "Not/A/Name"}))
    assert "patch" not in response and sidecars(mutated) == []
    assert "switchyard.dev/policy" in response["warnings"][0]


def test_every_decision_is_logged(webhook, tls_files):
    mutate(webhook, tls_files, INJECTED["single container"])
    mutate(webhook, tls_files, LEFT_ALONE["no label"])
    decisions = [json.loads(line)["fields"].get("decision") for line in list(webhook.logs)
                 if line.startswith("{")]
    assert "inject" in decisions and "leave" in decisions


def test_healthz(webhook, tls_files):
    context = ssl.create_default_context(cafile=str(tls_files / "ca.crt"))
    conn = http.client.HTTPSConnection(*webhook.addr, context=context, timeout=10)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()
