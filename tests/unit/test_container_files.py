"""Dockerfile and compose.yaml hold together (no container engine here to run them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1]) for pair in pairs]


def test_the_image_builds_the_wheel_then_runs_it_from_a_venv_as_a_non_root_user() -> None:
    steps = _instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms == ["python:3.11-slim AS build", "python:3.11-slim"]
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "pip wheel" in runs and "--no-deps" in runs
    assert "python -m venv /opt/walletd" in runs
    assert "--constraint /tmp/requirements.txt /tmp/dist/walletd-*.whl" in runs
    users = [arg for op, arg in steps if op == "USER"]
    assert users == ["walletd"]
    assert ("EXPOSE", "8000") in steps
    (healthcheck,) = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert "/livez" in healthcheck
    assert steps[-1] == ("CMD", '["walletd", "serve"]')


def test_the_build_context_keeps_only_what_the_image_reads() -> None:
    kept = [
        line[1:]
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert kept == ["pyproject.toml", "README.md", "requirements.txt", "walletd/"]
    copied = " ".join(arg for op, arg in _instructions() if op == "COPY")
    for name in ("pyproject.toml", "README.md", "requirements.txt", "walletd"):
        assert name in copied


def test_compose_runs_migrations_once_before_web_and_worker() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "web", "worker"}
    assert services["migrate"]["command"] == ["walletd", "init-db"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert services["worker"]["command"] == ["walletd", "worker"]
    assert services["web"]["command"] == ["walletd", "serve"]  # granian, walletd/serve.py


def test_every_long_running_service_has_a_health_check() -> None:
    services = _compose()["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/livez" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["worker"]["healthcheck"]["test"][:3] == ["CMD", "walletd", "worker-health"]


def test_secrets_come_from_the_environment_and_are_required() -> None:
    services = _compose()["services"]
    for name in ("migrate", "web", "worker"):
        env = services[name]["environment"]
        assert env["WALLETD_SECRET_KEY"].startswith("${WALLETD_SECRET_KEY:?")
        assert "${POSTGRES_PASSWORD:?" in env["WALLETD_DATABASE_URL"]
        assert env["WALLETD_BASE_URL"].startswith("${WALLETD_BASE_URL:?")
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"(PASSWORD|SECRET_KEY): [^$\s]", text)


def test_compose_config_accepts_the_file_where_a_compose_client_exists() -> None:
    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("no docker-compose client on this machine")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "POSTGRES_PASSWORD": "pw",
        "WALLETD_BASE_URL": "https://loyalty.example.com",
        "WALLETD_SECRET_KEY": "k" * 48,
    }
    result = subprocess.run(
        [client, "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        [client, "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": env["PATH"]},
        timeout=60,
    )
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD" in missing.stderr
