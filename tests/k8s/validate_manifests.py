"""Validates Kubernetes manifests against the API schemas (kubernetes-validate, strict).

RoutingPolicy objects are checked against the CRD generated from the Rust types
(deploy/crd.yaml); cert-manager kinds have no schema here and are only listed.
Usage: validate_manifests.py [--kubernetes-version V] FILE...
"""

import argparse
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
NO_SCHEMA_GROUPS = ("cert-manager.io/",)


def routing_policy_schema():
    crd = yaml.safe_load((ROOT / "deploy" / "crd.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def validate_object(obj, version):
    """Returns None when `obj` is valid, else a message; raises nothing for bad input."""
    api_version = obj.get("apiVersion", "")
    if api_version.startswith("switchyard.dev/"):
        try:
            # A CRD schema is OpenAPI 3.0, whose exclusiveMinimum is a boolean as in draft 4.
            jsonschema.Draft4Validator(routing_policy_schema()).validate(obj)
        except jsonschema.ValidationError as err:
            return f"{err.json_path}: {err.message}"
        return None
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        return f"{'.'.join(map(str, err.path))}: {err.message}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kubernetes-version", default="1.33.0")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    checked = problems = 0
    for name in args.files:
        for obj in yaml.safe_load_all(pathlib.Path(name).read_text()):
            if not obj:
                continue
            label = f"{name}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            if obj.get("apiVersion", "").startswith(NO_SCHEMA_GROUPS):
                print(f"no schema (not validated): {label}")
                continue
            checked += 1
            problem = validate_object(obj, args.kubernetes_version)
            if problem:
                problems += 1
                print(f"INVALID {label}: {problem}")
    print(f"validated {checked} objects, {problems} invalid")
    return 1 if problems or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
