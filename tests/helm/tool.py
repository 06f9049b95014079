"""The real Helm, built by tests/helm/build-helm.sh from the Go module proxy, and the chart it renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "helm" / "build-helm.sh"
CHART = REPO / "charts" / "keyguard"
NAMESPACE = "keyguard-system"
# The labels Helm charts conventionally add and the kustomize install does not have (the only difference allowed).
HELM_LABELS = frozenset(
    {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}
)


class HelmError(RuntimeError):
    """Helm could not be built: the message shows the end of the build log."""


def helm_binary() -> Path:
    """Build (or find cached) helm. A missing toolchain is a failure, never a skip."""
    if shutil.which("go") is None:
        raise HelmError("the chart tests build helm with Go, and `go` is not on PATH")
    result = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HelmError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1]) / "helm"


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def template(helm: Path, *args: str) -> list[dict[str, Any]]:
    """`helm template keyguard charts/keyguard -n keyguard-system ARGS`, as objects."""
    result = run_helm(helm, "template", "keyguard", str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]
