"""Checks the Dockerfile's build stage against its build context without a Docker daemon.

Copies what `.dockerignore` lets into the context and the build stage's COPY lines take
from it into a scratch directory, runs the dependency layer's RUN with its `cargo build`
made to stop right after cargo has loaded the manifest and its targets, then adds the
rest and loads it again. A manifest that names a file the context or the stage leaves
out (a bench, an example) fails here, not in the first real image build.

Usage: python docker_context.py REPO_ROOT
"""

import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile


def ignore_rules(root):
    rules = []
    with open(os.path.join(root, ".dockerignore")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def in_context(path, rules):
    """Docker's rule: the last pattern that matches the path or one of its parents wins."""
    parts = path.split("/")
    included = True
    for negated, pattern in rules:
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            included = negated
    return included


def build_stage(root):
    """The instructions of the `AS build` stage, continuation lines joined."""
    with open(os.path.join(root, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    out, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.upper().startswith("FROM "):
            inside = line.lower().endswith(" as build")
        elif inside and line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


# `cargo build` of a bin that does not exist loads the whole manifest, targets included,
# then stops before compiling anything: cargo has no "parse only" command that checks
# target files (`cargo metadata` does not).
PARSE_ONLY = "cargo build --release --locked --bin no-such-bin-parse-only"


def parse_manifest(work, script=PARSE_ONLY):
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, capture_output=True, text=True)
    if "no bin target named `no-such-bin-parse-only`" not in done.stderr:
        sys.exit(f"cargo could not load the manifest in the image's build stage:\n{done.stderr}")


def main(root):
    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout.split()
    rules = ignore_rules(root)
    context = [p for p in tracked if in_context(p, rules)]
    work = tempfile.mkdtemp()
    ran_first_run = False
    try:
        for keyword, rest in build_stage(root):
            if keyword == "COPY":
                *sources, dest = rest.split()
                for src in sources:
                    files = [p for p in context if p == src or p.startswith(src.rstrip("/") + "/")]
                    if not files:
                        sys.exit(f"COPY {src}: nothing in the build context (.dockerignore)")
                    for p in files:
                        rel = os.path.relpath(p, src) if p != src else os.path.basename(p)
                        target = os.path.join(work, dest, rel)
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        shutil.copy(os.path.join(root, p), target)
            elif keyword == "RUN" and not ran_first_run:
                ran_first_run = True
                # Everything up to the build: the dummy sources the layer makes.
                before_build = rest.split("cargo build --release --locked")[0]
                parse_manifest(work, before_build + PARSE_ONLY)
        parse_manifest(work)
    finally:
        shutil.rmtree(work)
    print(f"build context: {len(context)} files; both layers parse the manifest")


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "."))
