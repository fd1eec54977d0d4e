"""Deployment files, checked without a Docker engine: the compose file, .env.example and the Dockerfile.

* every ktsync service's ``command`` is a registered ``ktsync`` command whose options click accepts;
* every ``${VAR}`` the compose file uses, and every variable the code reads, is in ``.env.example``;
* the Dockerfile copies every top-level package the shipped code imports.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ktsync.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SHIPPED = ("ktsync", "worker", "producers", "config", "fake_klicktipp")  # what the image installs
SERVICES = {"redis", "worker", "beat", "flower", "console", "webhooks", "metrics", "fake-klicktipp"}
ENV_NAME = re.compile(r"^(?:KTSYNC|KLICKTIPP|HUBSPOT|CLOSE|ZOHO|FLOWER)_[A-Z0-9_]+$")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
NOT_CONFIGURATION = {"PYTHONPATH"}  # passed through to the fake's subprocess by fake_klicktipp.testing


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def ktsync_services() -> dict[str, dict[str, Any]]:
    """Services built from this repository: their command runs under the `ktsync` entrypoint."""
    return {name: spec for name, spec in compose()["services"].items() if "build" in spec}


def parse_ktsync(argv: list[str]) -> click.Command:
    """Parse ``ktsync ARGV`` as the real CLI would, without running it; raise click's usage errors."""
    command: click.Command = main
    context = click.Context(main, info_name="ktsync")
    args = list(argv)
    while isinstance(command, click.Group):
        name, sub, args = command.resolve_command(context, args)
        assert sub is not None
        assert name is not None
        context = sub.make_context(name, args, parent=context)
        command, args = sub, [*getattr(context, "_protected_args", []), *context.args]
    return command


def env_example_names() -> set[str]:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    return {m.group(1) for line in lines if (m := re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=", line))}


def test_the_compose_file_parses_and_has_every_service() -> None:
    services = compose()["services"]
    assert set(services) == SERVICES
    redis_service = services["redis"]
    assert "--appendonly" in redis_service["command"]
    assert redis_service["command"][redis_service["command"].index("--appendonly") + 1] == "yes"
    assert "healthcheck" in redis_service


def test_workers_scale_no_fixed_name_or_port() -> None:
    worker = compose()["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


@pytest.mark.parametrize("service", sorted(SERVICES - {"redis"}))
def test_every_service_runs_a_real_ktsync_command(service: str) -> None:
    argv = [str(part) for part in ktsync_services()[service]["command"]]
    try:
        parse_ktsync(argv)
    except click.UsageError as exc:
        if exc.message.startswith("No such command"):
            pytest.fail(f"service {service!r} runs `ktsync {' '.join(argv)}`, but `ktsync {argv[0]}` is not "
                        "registered in ktsync/cli.py yet (register it, or change the compose file)")  # fmt: skip
        pytest.fail(f"service {service!r}: `ktsync {' '.join(argv)}`: {exc.format_message()}")


def test_flower_gets_its_credentials_from_the_environment() -> None:
    flower = compose()["services"]["flower"]
    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert not any("auth" in str(part).lower() for part in flower["command"])  # never on the command line


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    assert used, "the compose file interpolates nothing?"
    assert used - env_example_names() == set()


def _python_files() -> list[Path]:
    return [path for package in SHIPPED for path in (ROOT / package).rglob("*.py")]


def _env_names_in_code() -> set[str]:
    names: set[str] = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value):
                names.add(node.value)
            # os.environ.get("REQUESTS_CA_BUNDLE") and the like
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str) and node.args[0].value.isupper()
                    and "environ" in ast.unparse(node.func.value)):  # fmt: skip
                names.add(node.args[0].value)
    return names


def test_env_example_lists_every_variable_the_code_reads() -> None:
    read = _env_names_in_code()
    assert {"KTSYNC_REDIS_URL", "KLICKTIPP_USERNAME", "FLOWER_BASIC_AUTH", "KTSYNC_LOG_FORMAT"} <= read
    assert read - NOT_CONFIGURATION - env_example_names() == set()


def test_env_example_holds_no_values_for_secrets() -> None:
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)  # uncommented assignments only
        if match:
            assert match.group(2) == "", f"{match.group(1)} has a value in .env.example"


def _first_party_imports(path: Path, first_party: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & first_party


def test_the_dockerfile_copies_every_package_the_code_imports() -> None:
    first_party = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    imported = {"ktsync"}  # the entrypoint, ktsync.cli:main
    for path in _python_files():
        imported |= _first_party_imports(path, first_party)
    copies = [line.split()[1:] for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")]
    copied = {source for *sources, _target in copies for source in sources}
    assert imported - copied == set(), "the image would miss these packages"
    assert {"pyproject.toml", "README.md"} <= copied, "`pip install .` needs both"
    # And pip installs them: each is in pyproject's package list
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {package for package in imported if f"{package}*" not in find["include"]} == set()
