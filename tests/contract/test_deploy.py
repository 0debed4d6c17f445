"""The deployment as far as it can be checked without a Docker engine.

docker-compose.yml must match the Compose specification (the JSON Schema check-jsonschema
ships), run only real `store` commands, set only variables the process really reads (with
values its settings accept), publish only the gateway, and start nothing before its backing
services are healthy and the migrations ran. The image must install everything those commands
need, and docs/configuration.md must say what the settings classes say.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import typer
import typer.main
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from cli import configdoc
from cli.main import SERVABLE, SERVICES
from cli.main import app as store_cli
from deploycheck.stack import SECRETS
from libs.contracts.topology import DEFAULT_EXCHANGE
from libs.runtime.settings import RuntimeSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sql"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
RABBITMQ_CONF = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
CONFIG_DOC = ROOT / "docs" / "configuration.md"

BACKING = ("postgres", "redis", "rabbitmq")
SETTINGS_PREFIXES = (
    "STORE_",
    "GATEWAY_",
    "CATALOG_",
    "CART_",
    "ORDERS_",
    "PAYMENTS_",
    "NOTIFICATIONS_",
)
UNPREFIXED_SETTINGS = ("ONE_OFF_PRODUCTS_AVAILABLE", "ISO_ALPHA_3_CURRENCY_CODE")
BUILD_PY = "import setuptools; setuptools.setup()"


# --- compose interpolation (the subset the Compose specification defines) --------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}$]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(Exception):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Resolve `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`... as compose does."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else value  # type: ignore[return-value]
        if op in (":?", "?"):
            if unset:
                raise InterpolationError(f"{name}: {arg}")
            return value  # type: ignore[return-value]
        if op in (":+", "+"):
            return "" if unset else arg
        return value or ""

    resolved = _VARIABLE.sub(replace, text)
    leftover = _VARIABLE.sub("", text)
    if "$" in leftover:
        raise InterpolationError(f"malformed interpolation in {text!r}")
    return resolved


def variables_in(text: str) -> list[tuple[str, str | None, str]]:
    """(name, operator, argument) of every variable a string refers to."""
    return [
        (m["braced"] or m["named"], m["op"], m["arg"] or "")
        for m in _VARIABLE.finditer(text)
        if not m["escaped"]
    ]


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def resolve_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_tree(value, env) for value in node]
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """deploy/compose.env.example as an operator fills it in: the secrets set."""
    env = read_env_file(ENV_EXAMPLE)
    for name in SECRETS:
        env[name] = f"test-{name.lower().replace('_', '-')}-{'0' * 32}"
    env["PAYMENTS_STRIPE_SECRET_KEY"] = "sk_test_operator"
    env["PAYMENTS_STRIPE_WEBHOOK_SECRET"] = "whsec_operator"
    return env


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any], operator_env: dict[str, str]) -> dict[str, Any]:
    """The compose file after interpolation, as `docker compose config` would see it."""
    return resolve_tree(raw_compose, operator_env)


def store_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the Store image (a `store ...` command)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if isinstance(service.get("command"), list) and service["command"][:1] == ["store"]
    }


def long_running(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in store_services(compose).items()
        if service["command"][1] == "serve"
    }


def one_shot(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in store_services(compose).items()
        if service["command"][1] != "serve"
    }


def settings_read_by(command: list[str]) -> list[str]:
    """The configdoc sources (settings classes) the process of a `store` command reads."""
    subcommand, args = command[1], command[2:]
    if subcommand == "serve":
        return ["runtime", args[0]]
    if subcommand == "migrate":
        named = [arg for arg in args if not arg.startswith("-")]
        return ["runtime", *(named or SERVICES)]
    if subcommand == "setupproducts":
        return ["runtime", "catalog"]
    if subcommand == "dev":
        return [source.key for source in configdoc.SOURCES]
    return ["runtime"]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def compose_schema() -> dict[str, Any]:
    import check_jsonschema

    path = (
        Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    )
    return json.loads(path.read_text())


# --- the Compose specification --------------------------------------------------------------


def test_the_compose_file_matches_the_compose_specification(raw_compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(raw_compose)
    ]
    assert errors == []
    assert "version" not in raw_compose, "the Compose specification has no `version:`"


def test_the_schema_check_catches_a_broken_compose_file(raw_compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(raw_compose))  # a copy without YAML's shared anchors
    broken["services"]["gateway"]["ports"] = {"8000": 8000}
    broken["services"]["cart"]["depends_on"]["postgres"]["condition"] = "service_ready"
    broken["services"]["orders"]["helthcheck"] = {"test": ["CMD", "true"]}
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = list(validator.iter_errors(broken))
    paths = [tuple(map(str, error.absolute_path)) for error in errors]
    for service in ("gateway", "cart", "orders"):
        assert any(path[:2] == ("services", service) for path in paths), service
    assert not any(path[:2] == ("services", "payments") for path in paths)
    assert any("helthcheck" in error.message for error in errors)


def test_check_jsonschema_accepts_the_compose_file() -> None:
    executable = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert executable, "check-jsonschema is a test dependency (pyproject [test])"
    result = subprocess.run(
        [executable, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- interpolation and secrets ----------------------------------------------------------------


def test_every_interpolated_variable_is_documented_in_the_env_example(
    raw_compose: dict[str, Any],
) -> None:
    documented = read_env_file(ENV_EXAMPLE)
    used = {name for text in strings_in(raw_compose) for name, _, _ in variables_in(text)}
    assert used - set(documented) == set(), "add them to deploy/compose.env.example"
    assert set(documented) - used == set(), "the example documents variables compose never uses"


def test_interpolation_is_well_formed(raw_compose: dict[str, Any], operator_env: dict) -> None:
    for text in strings_in(raw_compose):
        interpolate(text, operator_env)  # raises on malformed `$` use


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_have_no_default(
    secret: str, raw_compose: dict[str, Any], operator_env: dict[str, str]
) -> None:
    uses = [
        (op, arg)
        for text in strings_in(raw_compose)
        for name, op, arg in variables_in(text)
        if name == secret
    ]
    assert uses, f"{secret} is not used"
    assert all(op == ":?" for op, _ in uses), f"{secret} must be `${{{secret}:?...}}`"
    assert read_env_file(ENV_EXAMPLE)[secret] == "", "the example must not ship a secret"
    for value in (None, ""):
        env = {k: v for k, v in operator_env.items() if k != secret}
        if value is not None:
            env[secret] = value
        with pytest.raises(InterpolationError, match=secret):
            resolve_tree(raw_compose, env)


# --- commands -----------------------------------------------------------------------------------


def test_every_servable_process_runs_once_under_its_own_name(compose: dict[str, Any]) -> None:
    served = {name: service["command"][2] for name, service in long_running(compose).items()}
    assert sorted(served.values()) == sorted(SERVABLE)
    assert all(name == target for name, target in served.items())
    commands = sorted(service["command"][1] for service in one_shot(compose).values())
    assert commands == ["migrate", "setupproducts"]


def test_every_command_is_a_real_store_command(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    group: Any = typer.main.get_command(store_cli)  # a group: it has subcommands
    for name, service in store_services(compose).items():
        args = service["command"][1:]
        result = runner.invoke(store_cli, [*args, "--help"])
        assert result.exit_code == 0, f"{name}: `store {' '.join(args)} --help`: {result.output}"
        # --help is eager: parse the real arguments too (types, required values, unknown options).
        subcommand = group.get_command(typer.Context(group), args[0])
        assert subcommand is not None, f"{name}: no `store {args[0]}`"
        try:
            context = subcommand.make_context(args[0], list(args[1:]))
        except typer.TyperException as exc:
            pytest.fail(f"{name}: `store {' '.join(args)}`: {exc}")
        if args[0] == "serve":
            assert context.params["service"] in SERVABLE
            assert context.params["host"] == "0.0.0.0", f"{name} must listen on all interfaces"
            assert context.params["port"] == 8000


def test_the_command_check_catches_a_wrong_command() -> None:
    group: Any = typer.main.get_command(store_cli)  # a group: it has subcommands
    subcommand = group.get_command(typer.Context(group), "serve")
    for wrong in (["cart", "--port", "eighty"], ["cart", "--listen", "0.0.0.0"], []):
        with pytest.raises(typer.TyperException):
            subcommand.make_context("serve", wrong)
    assert group.get_command(typer.Context(group), "runserver") is None


# --- environment --------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.upper().startswith(SETTINGS_PREFIXES) or name.upper() in UNPREFIXED_SETTINGS:
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_variable_a_process_gets_is_one_of_its_settings(compose: dict[str, Any]) -> None:
    unknown = {}
    for name, service in store_services(compose).items():
        known = configdoc.known_env_names(settings_read_by(service["command"]))
        extra = sorted(set(environment_of(service)) - known)
        if extra:
            unknown[name] = extra
    assert unknown == {}, "set only variables the process reads (see docs/configuration.md)"


def test_the_settings_accept_the_values_compose_sets(
    compose: dict[str, Any], clean_environment: pytest.MonkeyPatch
) -> None:
    for name, service in store_services(compose).items():
        env = environment_of(service)
        with clean_environment.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            for key, settings_cls in configdoc.load_sources(
                settings_read_by(service["command"])
            ).items():
                try:
                    settings: Any = settings_cls()
                except ValidationError as exc:
                    pytest.fail(f"{name}: {settings_cls.__name__} refuses compose's values: {exc}")
                runtime = settings if isinstance(settings, RuntimeSettings) else settings.runtime
                assert not runtime.embedded, f"{name} would run in embedded mode"
                assert runtime.effective_log_format == "json"
                if key in SERVICES:
                    url = settings.resolved_database_url()
                    assert url.startswith("postgresql+asyncpg://"), f"{name}: {key} uses {url}"


def test_each_service_gets_only_its_own_database(compose: dict[str, Any]) -> None:
    for name, service in store_services(compose).items():
        urls = {k for k in environment_of(service) if k.endswith("_DATABASE_URL")}
        if service["command"][1] == "migrate":
            expected = {f"{svc.upper()}_DATABASE_URL" for svc in SERVICES}
        elif service["command"][1] == "setupproducts":
            expected = {"CATALOG_DATABASE_URL"}
        elif name == "gateway":
            expected = set()
        else:
            expected = {f"{name.upper()}_DATABASE_URL"}
        assert urls == expected, name


def test_the_databases_compose_uses_are_the_ones_postgres_creates(
    compose: dict[str, Any],
) -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+)", INIT_SQL.read_text(), re.IGNORECASE))
    assert created == {f"store_{svc}" for svc in SERVICES}
    migrate = environment_of(compose["services"]["migrate"])
    used = {urlsplit(migrate[f"{svc.upper()}_DATABASE_URL"]).path.lstrip("/") for svc in SERVICES}
    assert used == created
    mount = "./deploy/postgres/init-databases.sql:/docker-entrypoint-initdb.d/"
    assert any(v.startswith(mount) for v in compose["services"]["postgres"]["volumes"])


def test_service_urls_point_at_the_compose_services(compose: dict[str, Any]) -> None:
    for name, service in store_services(compose).items():
        env = environment_of(service)
        for svc in SERVICES:
            url = urlsplit(env[f"STORE_{svc.upper()}_URL"])
            assert (url.hostname, url.port) == (svc, 8000), f"{name}: STORE_{svc.upper()}_URL"
        assert urlsplit(env["STORE_REDIS_URL"]).hostname == "redis"
        assert urlsplit(env["STORE_BROKER_URL"]).hostname == "rabbitmq"


def test_payments_refuse_to_start_without_a_provider_choice(
    raw_compose: dict[str, Any], operator_env: dict[str, str], clean_environment: pytest.MonkeyPatch
) -> None:
    """Compose defaults with no Stripe keys: no silent dev provider that marks orders paid."""
    from services.payments.bootstrap import build_deps
    from services.payments.settings import PaymentsSettings, ProviderNotConfigured

    undecided = {
        **operator_env,
        "PAYMENTS_STRIPE_SECRET_KEY": "",
        "PAYMENTS_STRIPE_WEBHOOK_SECRET": "",
    }
    payments = resolve_tree(raw_compose, undecided)["services"]["payments"]
    for key, value in environment_of(payments).items():
        clean_environment.setenv(key, value)
    with pytest.raises(ProviderNotConfigured) as refused:
        build_deps(PaymentsSettings())
    for variable in (
        "PAYMENTS_STRIPE_SECRET_KEY",
        "PAYMENTS_STRIPE_WEBHOOK_SECRET",
        "PAYMENTS_PROVIDER",
    ):
        assert variable in str(refused.value)
    clean_environment.setenv("PAYMENTS_PROVIDER", "dev")
    assert PaymentsSettings().dev_enabled


def test_the_gateway_starts_with_compose_secrets_only(
    compose: dict[str, Any], clean_environment: pytest.MonkeyPatch
) -> None:
    from gateway.settings import DEV_COOKIE_SECRET, DEV_JWT_SECRET, GatewaySettings

    for key, value in environment_of(compose["services"]["gateway"]).items():
        clean_environment.setenv(key, value)
    settings = GatewaySettings()
    assert settings.jwt_secret not in ("", DEV_JWT_SECRET)
    assert settings.cookie_secret not in ("", DEV_COOKIE_SECRET)
    assert settings.runtime.service_token != RuntimeSettings.model_fields["service_token"].default


# --- ports, dependencies, health -----------------------------------------------------------------


def test_only_the_gateway_is_published(compose: dict[str, Any]) -> None:
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"gateway"}
    # On loopback unless the operator says otherwise, on the port the env example names.
    assert compose["services"]["gateway"]["ports"] == ["127.0.0.1:8000:8000"]


def test_the_published_port_and_the_public_url_change_together(
    raw_compose: dict[str, Any], operator_env: dict[str, str]
) -> None:
    moved = {**operator_env, "GATEWAY_PORT": "18080", "GATEWAY_PUBLISH_ADDRESS": "0.0.0.0"}
    moved["GATEWAY_PUBLIC_URL"] = "http://localhost:18080"
    services = resolve_tree(raw_compose, moved)["services"]
    assert services["gateway"]["ports"] == ["0.0.0.0:18080:8000"]
    assert services["gateway"]["environment"]["GATEWAY_PUBLIC_URL"] == "http://localhost:18080"
    # The defaults agree with each other, in the compose file and in the example.
    defaults = resolve_tree(
        raw_compose, {**operator_env, "GATEWAY_PORT": "", "GATEWAY_PUBLIC_URL": ""}
    )
    port = defaults["services"]["gateway"]["ports"][0].split(":")[1]
    assert urlsplit(
        defaults["services"]["gateway"]["environment"]["GATEWAY_PUBLIC_URL"]
    ).port == int(port)
    example = read_env_file(ENV_EXAMPLE)
    assert urlsplit(example["GATEWAY_PUBLIC_URL"]).port == int(example["GATEWAY_PORT"])
    # One address: the payments service leaves its links to the gateway's public URL.
    assert "PAYMENTS_PUBLIC_URL" not in services["payments"]["environment"]


def test_every_image_is_overridable_and_defaults_to_the_official_one(
    raw_compose: dict[str, Any], operator_env: dict[str, str]
) -> None:
    official = {
        "postgres": ("POSTGRES_IMAGE", "postgres:16"),
        "redis": ("REDIS_IMAGE", "redis:7"),
        "rabbitmq": ("RABBITMQ_IMAGE", "rabbitmq:3.13-management"),
    }
    example = read_env_file(ENV_EXAMPLE)
    for service, (variable, image) in official.items():
        assert raw_compose["services"][service]["image"] == f"${{{variable}:-{image}}}"
        assert example[variable] == image
        swapped = resolve_tree(raw_compose, {**operator_env, variable: f"local/{service}"})
        assert swapped["services"][service]["image"] == f"local/{service}"
    build = raw_compose["x-store-image"]["build"]
    assert build["args"] == {"PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.11-slim}"}
    assert example["PYTHON_IMAGE"] == "python:3.11-slim"


def test_every_store_service_waits_for_healthy_backing_services_and_migrations(
    compose: dict[str, Any],
) -> None:
    for name, service in long_running(compose).items():
        depends = service.get("depends_on") or {}
        for backing in BACKING:
            assert depends.get(backing, {}).get("condition") == "service_healthy", (name, backing)
        assert depends.get("migrate", {}).get("condition") == "service_completed_successfully"
    gateway = compose["services"]["gateway"]["depends_on"]
    for svc in SERVICES:
        assert gateway[svc]["condition"] == "service_healthy"
    for name in ("migrate", "setupproducts"):
        assert compose["services"][name]["depends_on"]["postgres"]["condition"] == (
            "service_healthy"
        )
    setup = compose["services"]["setupproducts"]["depends_on"]
    assert setup["migrate"]["condition"] == "service_completed_successfully"


def test_dependencies_are_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = dependency["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must be one-shot"

    def reaches(start: str, seen: tuple[str, ...]) -> None:
        for target in services[start].get("depends_on") or {}:
            assert target not in seen, f"dependency cycle: {' -> '.join((*seen, target))}"
            reaches(target, (*seen, target))

    for name in services:
        reaches(name, (name,))


def test_every_one_shot_job_is_waited_on_so_up_wait_has_an_honest_exit_code(
    compose: dict[str, Any],
) -> None:
    jobs = one_shot(compose)
    # `docker compose up --wait` fails on a container that exited unless a service waited for
    # it to complete successfully.
    awaited = {
        dependency
        for service in compose["services"].values()
        for dependency, rule in (service.get("depends_on") or {}).items()
        if rule.get("condition") == "service_completed_successfully"
    }
    assert set(jobs) == {"migrate", "setupproducts"}
    assert set(jobs) <= awaited
    # ... yet refused product entries do not keep the shop closed.
    rule = compose["services"]["gateway"]["depends_on"]["setupproducts"]
    assert rule["required"] is False


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name in BACKING:
        assert compose["services"][name]["healthcheck"]["test"], name
    assert compose["services"]["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert compose["services"]["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert compose["services"]["rabbitmq"]["healthcheck"]["test"][1:] == [
        "rabbitmq-diagnostics",
        "-q",
        "ping",
    ]
    for name, service in long_running(compose).items():
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        port = service["command"][service["command"].index("--port") + 1]
        assert f"http://127.0.0.1:{port}/readyz" in test[3], name


class _Readiness(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_health_check_command_follows_readyz(
    compose: dict[str, Any], status: int, healthy: bool
) -> None:
    handler = type("Handler", (_Readiness,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = compose["services"]["cart"]["healthcheck"]["test"][3]
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{server.server_address[1]}")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy


# --- volumes and files ----------------------------------------------------------------------------


def test_volumes_are_declared_and_media_belongs_to_the_catalog(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    media_users = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
            if source == "media":
                media_users[name] = target
    assert set(media_users) == {"catalog", "setupproducts"}
    for name, target in media_users.items():
        assert environment_of(compose["services"][name])["CATALOG_MEDIA_DIR"] == target


def test_setupproducts_reads_a_configuration_the_image_contains(compose: dict[str, Any]) -> None:
    env = environment_of(compose["services"]["setupproducts"])
    image_path = PurePosixPath(env["ONE_OFF_PRODUCTS_AVAILABLE"])
    copies = dockerfile_copies()
    for source, target in copies:
        target_path = PurePosixPath(target)
        if image_path.is_relative_to(target_path):
            repo_file = ROOT / source / image_path.relative_to(target_path)
            assert repo_file.is_file(), f"{repo_file} does not exist"
            json.loads(repo_file.read_text())
            return
    pytest.fail(f"the image has no {image_path}")


# --- RabbitMQ -----------------------------------------------------------------------------------


def test_definitions_declare_the_exchange_and_no_credentials() -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    assert RuntimeSettings().exchange == DEFAULT_EXCHANGE
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    assert exchanges[DEFAULT_EXCHANGE]["type"] == "topic"
    assert exchanges[DEFAULT_EXCHANGE]["durable"] is True
    assert not definitions.get("users")
    assert "password" not in DEFINITIONS.read_text()


def test_rabbitmq_imports_the_definitions_and_the_configured_account(
    compose: dict[str, Any],
) -> None:
    rabbit = compose["services"]["rabbitmq"]
    conf = dict(
        line.split("=", 1) for line in RABBITMQ_CONF.read_text().splitlines() if "=" in line
    )
    conf = {k.strip(): v.strip() for k, v in conf.items() if not k.lstrip().startswith("#")}
    directory = conf["definitions.local.path"]
    assert conf["definitions.import_backend"] == "local_filesystem"
    mounts = dict(reversed(v.split(":")[:2]) for v in rabbit["volumes"])
    assert mounts["/etc/rabbitmq/conf.d/90-store.conf"] == "./deploy/rabbitmq/rabbitmq.conf"
    assert mounts[f"{directory}/10-topology.json"] == "./deploy/rabbitmq/definitions.json"
    (users_mount,) = rabbit["configs"]
    assert users_mount["target"] == f"{directory}/20-users.json"
    # 10-topology.json creates the vhost the account's permissions refer to: it sorts first.
    assert sorted(["10-topology.json", "20-users.json"])[0] == "10-topology.json"
    users = json.loads(compose["configs"][users_mount["source"]]["content"])
    broker = urlsplit(environment_of(compose["services"]["cart"])["STORE_BROKER_URL"])
    (user,) = users["users"]
    assert (user["name"], user["password"]) == (broker.username, broker.password)
    (permission,) = users["permissions"]
    assert permission["user"] == broker.username
    assert permission["vhost"] == (broker.path.lstrip("/") or "/")
    assert rabbit.get("hostname") == "rabbitmq", "the node's data follows its host name"


# --- the image ----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        keyword, _, rest = line.strip().partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    start = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[start:]


def dockerfile_copies(*, stage: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(source in the build context, target in the image) of every COPY from the context."""
    copies = []
    for keyword, rest in stage if stage is not None else dockerfile_instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        parts = [part for part in rest.split() if not part.startswith("--")]
        *sources, target = parts
        for source in sources:
            copies.append((source, target))
    return copies


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch(prefix, pattern) or (
                pattern != bare and fnmatch(prefix.split("/")[-1], bare)
            ):
                return True
    return False


def test_the_image_is_one_slim_non_root_store_image() -> None:
    instructions = dockerfile_instructions()
    stage = final_stage()
    # Both stages start from the PYTHON_IMAGE build argument, the official image by default.
    assert instructions[0] == ("ARG", "PYTHON_IMAGE=python:3.11-slim")
    assert stage[0] == ("FROM", "${PYTHON_IMAGE}")
    assert not DOCKERFILE.read_text().startswith("# syntax="), "no frontend from a registry"
    keywords = [keyword for keyword, _ in instructions]
    assert "HEALTHCHECK" not in keywords, "compose defines the health checks"
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8000") in stage
    assert ("ENTRYPOINT", "[]") in stage
    (cmd,) = [json.loads(rest) for keyword, rest in stage if keyword == "CMD"]
    assert cmd == ["store", "--help"]
    assert any(keyword == "RUN" and "pip install ." in rest for keyword, rest in instructions)


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    for source, _ in dockerfile_copies():
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
    assert dockerignored(".venv") and dockerignored("services/cart/__pycache__")


def test_the_image_environment_is_real_settings() -> None:
    names = set()
    for keyword, rest in final_stage():
        if keyword == "ENV":
            names.update(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest))
    settings = {n for n in names if n.startswith(SETTINGS_PREFIXES) or n in UNPREFIXED_SETTINGS}
    known = configdoc.known_env_names(source.key for source in configdoc.SOURCES)
    assert settings, "the image sets STORE_DATA_DIR"
    assert settings - known == set()


def test_pip_install_from_the_build_context_installs_every_module_and_migration(
    tmp_path: Path,
) -> None:
    """What `pip install .` puts into the image: setuptools' build_py over the copied tree."""
    context = tmp_path / "src"
    build_stage = dockerfile_instructions()[: len(dockerfile_instructions()) - len(final_stage())]
    for source, _ in dockerfile_copies(stage=build_stage):
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, context / source)
    built = tmp_path / "lib"
    # setuptools' build step of `pip install .`: the same package discovery and package data.
    result = subprocess.run(
        [sys.executable, "-c", BUILD_PY, "-q", "build_py", "--build-lib", str(built)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    wanted = [
        path.relative_to(ROOT)
        for package in ("libs", "services", "gateway", "cli")
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".py", ".mako", ".json", ".html", ".ini")
        and "__pycache__" not in path.parts
    ]
    missing = [str(path) for path in wanted if not (built / path).is_file()]
    assert missing == []
    for svc in SERVICES:
        assert (built / "services" / svc / "migrations" / "env.py").is_file()
        assert list((built / "services" / svc / "migrations" / "versions").glob("*.py")), svc


# --- the configuration reference ----------------------------------------------------------------


def test_the_configuration_reference_is_up_to_date() -> None:
    assert all(source.is_present() for source in configdoc.SOURCES)
    expected = configdoc.render()
    actual = CONFIG_DOC.read_text() if CONFIG_DOC.exists() else ""
    assert actual == expected, (
        "docs/configuration.md is out of date: run "
        "`python -m cli.configdoc > docs/configuration.md`"
    )


def test_the_reference_lists_every_setting_of_every_process() -> None:
    text = configdoc.render()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", text, re.MULTILINE))
    for settings_cls in configdoc.load_sources().values():
        for var in configdoc.env_vars(settings_cls):
            assert var.name in documented
    assert {"ONE_OFF_PRODUCTS_AVAILABLE", "ISO_ALPHA_3_CURRENCY_CODE"} <= documented
    assert {"STORE_BROKER_URL", "GATEWAY_JWT_SECRET", "PAYMENTS_PUBLIC_URL"} <= documented
    assert not any(name.endswith("_RUNTIME") for name in documented)


def test_env_names_follow_pydantic_settings() -> None:
    from pydantic import AliasChoices, Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Inner(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="IN_")
        value: int = 1

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EX_", populate_by_name=True)
        plain: int = Field(3, description="A | B")
        listed: tuple[int, ...] = Field((1, 2), description="Sizes.")
        switch: bool = Field(False, description="On.")
        aliased: str = Field(
            "x", validation_alias=AliasChoices("SHOP_WIDE", "aliased"), description="Alias."
        )
        needed: str = Field(description="Required.")
        inner: Inner = Field(default_factory=Inner)

    variables = {var.field: var for var in configdoc.env_vars(Example)}
    assert set(variables) == {"plain", "listed", "switch", "aliased", "needed"}
    assert variables["plain"].name == "EX_PLAIN"
    assert variables["listed"].default == "`[1, 2]`"
    assert variables["switch"].default == "`false`"
    assert variables["needed"].default == "required"
    assert variables["aliased"].name == "SHOP_WIDE"
    assert set(variables["aliased"].accepted) == {"SHOP_WIDE", "ALIASED", "EX_ALIASED"}

    # Every accepted name really sets the field.
    for name in variables["aliased"].accepted:
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setenv(name, "y")
        try:
            assert Example(needed="n").aliased == "y", name
        finally:
            monkeypatch.undo()
    assert configdoc._cell(variables["plain"].description) == "A \\| B"
