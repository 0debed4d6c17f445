"""`python -m deploycheck.kubernetes`: render deploy/kubernetes/ and validate it offline.

The kustomization is rendered by a small loader (resources, namespace, images: the features the
base and the example overlay use) and, where `kubectl kustomize` exists, compared with it. Every
object is validated against the Kubernetes API schemas that `kubernetes-validate` ships, then
the rules of the deployment are checked: probes, resources, an HPA and a PDB per Deployment,
both Jobs, the Secret's keys, and the network policies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "deploy" / "kubernetes" / "overlays" / "example"
KUBERNETES_VERSION = "1.30.0"
CLUSTER_SCOPED = {"Namespace"}


def render(folder: Path) -> list[dict[str, Any]]:
    """The objects a kustomization folder produces."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            objects += render(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    namespace = spec.get("namespace")
    images = {image["name"]: image for image in spec.get("images", [])}
    for obj in objects:
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        for container in containers(obj):
            image = images.get(container["image"])
            if image:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objects


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment's or a Job's pod template."""
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(pod.get("containers", []))


def key(obj: dict[str, Any]) -> tuple[str, str]:
    """(kind, name)."""
    return obj["kind"], obj["metadata"]["name"]


def kubectl_render(folder: Path) -> list[dict[str, Any]] | None:
    """`kubectl kustomize` output, where kubectl is installed."""
    if shutil.which("kubectl") is None:
        return None
    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def problems(objects: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the rendered objects (empty when all is well)."""
    found = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            found.append(f"{key(obj)}: {exc.message} at {list(exc.path)}")
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    deployments = by_kind.get("Deployment", {})
    if set(deployments) != {"catalog", "cart", "orders", "payments", "notifications", "gateway"}:
        found.append(f"Deployments: {sorted(deployments)}")
    secret_keys = set(by_kind.get("Secret", {}).get("store-secrets", {}).get("stringData", {}))
    for name, deployment in deployments.items():
        for container in containers(deployment):
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                    found.append(f"{name}: {probe} must GET {path}")
            if not container.get("resources", {}).get("requests"):
                found.append(f"{name}: no resource requests")
            if "preStop" not in container.get("lifecycle", {}):
                found.append(f"{name}: no preStop drain")
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"):
            if name not in by_kind.get(kind, {}):
                found.append(f"{name}: no {kind}")
    for name in ("migrate", "setupproducts"):
        job = by_kind.get("Job", {}).get(name)
        if job is None or containers(job)[0]["command"] != ["store", name]:
            found.append(f"Job {name}: missing or not `store {name}`")
    for obj in [*deployments.values(), *by_kind.get("Job", {}).values()]:
        for container in containers(obj):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional") and ref["key"] not in secret_keys:
                    found.append(f"{key(obj)}: secret key {ref['key']} not in store-secrets")
    policies = by_kind.get("NetworkPolicy", {})
    deny = policies.get("default-deny-ingress", {}).get("spec", {})
    if deny.get("podSelector") != {} or deny.get("ingress"):
        found.append("no default-deny ingress policy")
    open_to_all = [
        name
        for name, policy in policies.items()
        for rule in policy["spec"].get("ingress", [])
        if "from" not in rule
    ]
    gateway_only = [policies[name]["spec"]["podSelector"] for name in open_to_all]
    if gateway_only != [{"matchLabels": {"app.kubernetes.io/name": "gateway"}}]:
        found.append(f"reachable from outside: {gateway_only}, not the gateway alone")
    return found


def main() -> int:
    """Render, compare with kubectl where present, validate; exit 1 on any problem."""
    objects = render(OVERLAY)
    found = problems(objects)
    reference = kubectl_render(OVERLAY)
    if reference is not None:
        ours = sorted((key(o), yaml.safe_dump(o, sort_keys=True)) for o in objects)
        theirs = sorted((key(o), yaml.safe_dump(o, sort_keys=True)) for o in reference)
        if ours != theirs:
            found.append("the loader's rendering differs from `kubectl kustomize`")
    for problem in found:
        print(f"deploycheck.kubernetes: {problem}", file=sys.stderr)
    compared = "compared with kubectl kustomize" if reference is not None else "no kubectl"
    print(
        f"deploycheck.kubernetes: {len(objects)} objects rendered ({compared}), validated "
        f"against Kubernetes {KUBERNETES_VERSION}: {'FAILED' if found else 'ok'}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
