"""The deployment checks' own rules, without Docker: env file, README commands, manifests."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from deploycheck import kubernetes
from deploycheck.stack import ENV_EXAMPLE, SECRETS, env_file, readme_commands

MAIN = Path(__file__).resolve().parents[2] / "deploycheck" / "__main__.py"


def parse(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_the_env_file_has_strong_distinct_secrets_and_keeps_the_example() -> None:
    first, second = parse(env_file({"GATEWAY_PORT": "18080"})), parse(env_file({}))
    for name in SECRETS:
        assert len(first[name]) >= 32 and first[name] != second[name]
    assert len({first[name] for name in SECRETS}) == len(SECRETS)
    assert first["GATEWAY_PORT"] == "18080"
    example = parse(ENV_EXAMPLE.read_text())
    assert {k: v for k, v in first.items() if k not in SECRETS and k != "GATEWAY_PORT"} == {
        k: v for k, v in example.items() if k not in SECRETS and k != "GATEWAY_PORT"
    }


def test_every_compose_step_the_check_runs_is_a_readme_line_and_back() -> None:
    steps = re.findall(r'compose\.step\("([^"]+)"\)', MAIN.read_text())
    readme = [" ".join(args) for args in readme_commands()]
    assert sorted(steps) == sorted(readme)


def test_the_manifests_validate() -> None:
    assert kubernetes.problems(kubernetes.render(kubernetes.OVERLAY)) == []


@pytest.mark.parametrize(
    "breakage",
    ["unknown field", "no readiness probe", "no PDB", "service open to all", "missing secret"],
)
def test_the_manifest_check_catches_a_broken_deployment(breakage: str) -> None:
    objects = copy.deepcopy(kubernetes.render(kubernetes.OVERLAY))
    by_key = {kubernetes.key(obj): obj for obj in objects}
    cart = by_key[("Deployment", "cart")]
    container = cart["spec"]["template"]["spec"]["containers"][0]
    if breakage == "unknown field":
        cart["spec"]["replicaz"] = 3
    elif breakage == "no readiness probe":
        del container["readinessProbe"]
    elif breakage == "no PDB":
        objects.remove(by_key[("PodDisruptionBudget", "cart")])
    elif breakage == "service open to all":
        del by_key[("NetworkPolicy", "services-from-the-store-only")]["spec"]["ingress"][0]["from"]
    else:
        del by_key[("Secret", "store-secrets")]["stringData"]["CART_DATABASE_URL"]
    assert kubernetes.problems(objects) != []
