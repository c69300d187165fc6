"""deploy/compose.yaml, checked as far as a machine without a Docker engine can: every service runs
a real `voc` command with real options, every VOC_* variable is a real setting, the volumes,
health checks and start order hold together, and the Dockerfile copies paths that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from feedback.config import Settings
from jobs.cli import app

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
VOC_SERVICES = ("migrate", "api", "scheduler", "worker")
LONG_RUNNING = ("db", "api", "scheduler", "worker")
# VOC_* variables read by code rather than by Settings, with the file that reads each.
PLAIN_VARIABLES = {"VOC_TORCH_THREADS": REPO / "classifiers" / "encoder.py",
                   "VOC_CONFIG": REPO / "feedback" / "config.py"}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _example_env() -> dict[str, str]:
    """The assignments deploy/.env.example makes (not the commented-out ones)."""
    env = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def _interpolate(node: Any, env: dict[str, str], missing: set[str]) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} (and $$ for a literal $)."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env, missing) for value in node]
    if not isinstance(node, str):
        return node

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        missing.add(name)
        return f"<{name}>"

    parts = node.split("$$")
    return "$".join(_VARIABLE.sub(replace, part) for part in parts)


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as Docker Compose sees it with deploy/.env copied from the example."""
    missing: set[str] = set()
    resolved = _interpolate(raw_compose, _example_env(), missing)
    assert not missing, f"variables with no default that deploy/.env.example does not set: {sorted(missing)}"
    return resolved


@pytest.fixture(scope="module")
def cli() -> Any:
    """The `voc` command as click sees it (typer vendors its own click: duck-typed here)."""
    command = typer.main.get_command(app)
    assert hasattr(command, "commands")
    return command


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def _setting(name: str) -> Any:
    """The Settings field that the environment variable `name` sets; raises KeyError if none."""
    assert name.startswith("VOC_"), name
    model: type[BaseModel] = Settings
    field = None
    for part in name.removeprefix("VOC_").lower().split("__"):
        if field is not None:
            annotation = field.annotation
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel), f"{name}: not nested"
            model = annotation
        field = model.model_fields[part]
    return field


def test_the_services_are_the_production_set(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"db", *VOC_SERVICES}
    assert compose["services"]["db"]["image"].startswith("postgres:")  # the official image


def test_every_voc_service_runs_a_real_subcommand_with_real_options(compose: dict[str, Any], cli: Any) -> None:
    runner = CliRunner()
    for name in VOC_SERVICES:
        argv = _command(compose["services"][name])
        assert argv[0] == "voc", f"{name}: {argv}"
        subcommand = argv[1]
        assert subcommand in cli.commands, f"{name}: `voc {subcommand}` is not a command ({sorted(cli.commands)})"
        options = {opt for param in cli.commands[subcommand].params for opt in (*param.opts, *param.secondary_opts)}
        for token in argv[2:]:
            if token.startswith("-"):
                assert token.split("=")[0] in options, f"{name}: `voc {subcommand}` has no option {token}"
        result = runner.invoke(app, [*argv[1:], "--help"])
        assert result.exit_code == 0, f"{name}: {result.output}"


def test_the_worker_service_is_voc_worker_and_scales(compose: dict[str, Any], cli: Any) -> None:
    """`voc worker` (tagging workers that share the database); N of them with --scale worker=N."""
    worker = compose["services"]["worker"]
    assert _command(worker)[:2] == ["voc", "worker"]
    assert "worker" in cli.commands
    assert int(worker["deploy"]["replicas"]) >= 1
    # a fixed container name or host port would stop a second replica from starting
    assert "container_name" not in worker and "ports" not in worker
    assert "until-empty" not in " ".join(_command(worker))  # a service waits for work, it does not exit


def test_every_voc_variable_is_a_real_setting_with_a_valid_value(compose: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    names: dict[str, str] = {}
    for name in VOC_SERVICES:
        environment = compose["services"][name].get("environment", {})
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        names.update({key: str(value) for key, value in environment.items() if key.startswith("VOC_")})
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(VOC_[A-Z0-9_]+)=", example, flags=re.M))
    assert "VOC_DATABASE_URL" in names and "VOC_PRIVACY__PSEUDONYM_SECRET" in names
    for name in sorted({*names, *documented}):
        if name in PLAIN_VARIABLES:
            assert f'"{name}"' in PLAIN_VARIABLES[name].read_text(), f"{name} is no longer read"
            continue
        try:
            _setting(name)
        except KeyError:
            pytest.fail(f"{name} names no setting of feedback.config.Settings")
    # the values parse as the settings they set (a port as an int, the URL as given)
    monkeypatch.setenv("VOC_CONFIG", "/nonexistent/voc.toml")
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("postgresql+psycopg://") and "@db:5432/" in settings.database_url
    assert settings.api.host == "0.0.0.0" and settings.api.port == 8000
    assert settings.privacy.pseudonym_secret == _example_env()["VOC_PRIVACY__PSEUDONYM_SECRET"]


def test_the_secrets_must_be_set(raw_compose: dict[str, Any]) -> None:
    """No default password or pseudonym key: Compose refuses to start without deploy/.env."""
    missing: set[str] = set()
    _interpolate(raw_compose, {}, missing)
    assert missing == {"POSTGRES_PASSWORD", "VOC_PRIVACY__PSEUDONYM_SECRET"}


def test_volumes_health_checks_start_order_and_restarts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in declared, f"{name}: volume {source} not declared"
        assert "healthcheck" in service, f"{name}: say how its health is checked (or that it is not)"
        if name in LONG_RUNNING:
            assert service["restart"] in ("always", "unless-stopped"), name
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    for name in VOC_SERVICES:  # topic models written by the scheduler are read by the others
        assert "voc-var:/app/var" in services[name]["volumes"], name
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "/health" in api_check and ":8000" in api_check
    assert services["api"]["ports"] == ["8000:8000"]

    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("api", "scheduler", "worker"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_the_api_serves_health_on_the_checked_port(tmp_path: Path) -> None:
    from api.main import create_app

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'voc.db'}", var_dir=tmp_path, _env_file=None)
    assert "get" in create_app(settings).openapi()["paths"]["/health"]
    assert settings.api.port == 8000


def test_the_dockerfile_builds_what_compose_runs(raw_compose: dict[str, Any]) -> None:
    build = raw_compose["x-voc"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == REPO / "Dockerfile"
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    for line in lines:
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
    text = dockerfile.read_text()
    assert '".[postgres]"' in text  # the PostgreSQL driver the URL names
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^postgres = \[.*"psycopg', pyproject, flags=re.M)
    assert 'VOLUME ["/app/var"]' in text  # where compose mounts voc-var
    for arg in build.get("args", {}):
        assert f"ARG {arg}" in text, f"compose passes build arg {arg}, the Dockerfile takes none"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "deploy/.env" in ignored  # no virtualenv, no secrets in the context


def test_the_readme_shows_the_production_path(cli: Any) -> None:
    readme = (REPO / "README.md").read_text()
    assert "docker compose -f deploy/compose.yaml up -d --scale worker=4" in readme
    match = re.search(r"docker compose -f deploy/compose.yaml exec api (voc keys create [^`\n]*)", readme)
    assert match, "the README shows how to create an API key in the running stack"
    argv = shlex.split(match[1])[1:]
    keys = cli.commands["keys"]
    assert argv[1] in keys.commands
    options = {opt for param in keys.commands[argv[1]].params for opt in param.opts}
    assert {token for token in argv if token.startswith("--")} <= options
