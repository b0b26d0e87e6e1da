"""docker-compose.yml as a platform team would review it: start order, healthchecks, no default secrets,
pinned images. Checked structurally here; ``docker compose config`` also validates it where Docker exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _ours(service: dict[str, Any]) -> bool:
    return "build" in service


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":  # one-shot (migrate)
            continue
        check = svc.get("healthcheck", {}).get("test")
        assert check and check[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    worker_check = compose["services"]["worker"]["healthcheck"]["test"]
    assert worker_check[1:] == ["python", "-m", "worker.health"]
    assert (ROOT / "worker" / "health.py").is_file()
    # its default --name is worker@<hostname>, the node name the workers are started with
    assert "worker@%h" in compose["services"]["worker"]["command"]
    assert "/health" in " ".join(compose["services"]["api"]["healthcheck"]["test"])


def test_migrations_complete_before_the_api_and_workers_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "-m", "persistence.migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, svc in services.items():
        if _ours(svc) and name != "migrate":
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
            assert "persistence.migrate" not in " ".join(svc.get("command", [])), f"{name} migrates on its own"


def test_no_default_credentials(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for name, svc in compose["services"].items():
        env = svc.get("environment", {})
        for key, value in env.items():
            if "PASSWORD" in key:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}.{key} has a default"
            if key == "DATABASE_URL":
                assert "${POSTGRES_PASSWORD:?" in str(value), f"{name}: DATABASE_URL embeds a password"
    assert "kdv:kdv@" not in text


def test_third_party_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        if _ours(svc):
            continue
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+(\.\d+)?[\w.-]*(@sha256:[0-9a-f]{64})?", image), f"{name}: {image} is not pinned"
    redis_cmd = compose["services"]["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"  # queued messages survive a restart


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None  # Debian's docker-compose package


def test_docker_compose_config_validates() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")
    env = {**os.environ, "POSTGRES_PASSWORD": "test-only"}
    ok = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    env.pop("POSTGRES_PASSWORD")
    refused = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr


def _requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_the_lock_pins_every_declared_dependency() -> None:
    """requirements.lock (make lock) covers pyproject's dependencies and extras, each at one exact version;
    torch is left to pyproject's pin (its build differs per machine)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(d) for d in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_requirement_name(d) for d in extra}
    pinned: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pinned[name.lower().replace("_", "-")] = version
    missing = declared - set(pinned) - {"torch"}
    assert not missing, f"run `make lock`: {sorted(missing)} are declared but not locked"
    assert "torch" not in pinned and not any(n.startswith("nvidia-") for n in pinned)


def test_the_image_installs_the_lock() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.lock" in docker and "uninstall" not in docker
    assert re.search(r"^FROM python:3\.11\.\d+-slim", docker, flags=re.M)
    makefile = (ROOT / "Makefile").read_text()
    assert "-r requirements.lock" in makefile
