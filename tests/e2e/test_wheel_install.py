"""The built wheel installs into a fresh virtualenv outside the source tree and serves from there:
`walletd init-db`, `walletd worker` and gunicorn run from the installed package alone."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.wheel


def _run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


def _copy_source(target: Path) -> Path:
    """The files a build reads, copied so the build leaves nothing in the checkout."""
    source = target / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "walletd", source / "walletd", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


def _shipped_files(package: Path) -> set[str]:
    """Every file of a walletd folder that the wheel must carry: of the translations, only the
    compiled .mo catalogs (the .po/.pot sources and babel.cfg are for translators)."""
    relative = (p.relative_to(package) for p in package.rglob("*") if p.is_file())
    return {
        path.as_posix()
        for path in relative
        if "__pycache__" not in path.parts
        and not (path.parts[0] == "translations" and path.suffix != ".mo")
    }


def _build_wheel(source: Path, dist: Path) -> Path:
    # Offline and fast when setuptools is in this environment (requirements-dev.txt pins it).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", dist, source])
    (wheel,) = dist.glob("walletd-*.whl")
    return wheel


class Process:
    """A background process of the installed walletd, its output kept in a file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 15 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes started by the test, stopped at its end whatever happens."""
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def _readiness_path() -> str:
    """/readyz once the app has it (issue 13 "ops" part), /healthz before."""
    sources = (p.read_text() for p in (ROOT / "walletd").rglob("*.py"))
    return "/readyz" if any('"/readyz"' in text for text in sources) else "/healthz"


def _wait_for(url: str, server: Process, deadline_s: float = 60) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"the server exited:\n{server.output()}")
        try:
            last = httpx.get(url, timeout=2)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    body = last.text if last is not None else "no answer"
    raise AssertionError(f"{url} did not answer 200 in {deadline_s} s: {body}\n{server.output()}")


def test_the_wheel_installs_into_a_fresh_venv_and_serves_from_the_installed_package(
    tmp_path: Path, processes: list[Process]
) -> None:
    started = time.monotonic()
    wheel = _build_wheel(_copy_source(tmp_path), tmp_path / "dist")
    built = time.monotonic()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # The pinned lock as constraints: the same versions as `make run`, mostly from pip's cache.
    constraints = ROOT / "requirements.txt"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet"]
    _run([*pip, "--constraint", constraints, wheel])
    installed = time.monotonic()

    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WALLETD_", "PYTHON", "VIRTUAL_ENV", "GUNICORN_", "PROMETHEUS_"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        WALLETD_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'walletd.db'}",
    )
    located = _run([python, "-c", "import walletd; print(walletd.__file__)"], cwd=workdir, env=env)
    package = Path(located.stdout.strip()).parent
    assert package.is_relative_to(venv)
    assert _shipped_files(ROOT / "walletd") - _shipped_files(package) == set()
    assert (
        ROOT.as_posix() not in _run([python, "-c", "import sys; print(sys.path)"], env=env).stdout
    )

    walletd = str(venv / "bin" / "walletd")
    _run([walletd, "init-db"], cwd=workdir, env=env)
    current = _run([walletd, "db", "current", "--check"], cwd=workdir, env=env)
    assert current.stdout.strip().endswith("(head)")
    # The development secret key lands in the default instance folder, made in the working dir.
    assert (workdir / "instance" / "secret_key").is_file()
    _run([walletd, "dev-certs"], cwd=workdir, env=env)
    keys = json.loads(
        _run([walletd, "create-brand", "Acme", "--json"], cwd=workdir, env=env).stdout
    )

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env.update(
        WALLETD_BASE_URL=base,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
    )
    processes.append(Process([walletd, "worker"], workdir, env, tmp_path / "worker.log"))
    gunicorn = [str(venv / "bin" / "gunicorn")]
    if (ROOT / "walletd" / "gunicorn_conf.py").is_file():
        gunicorn += ["-c", "python:walletd.gunicorn_conf"]
    else:  # until the packaged gunicorn settings land (issue 13 "ops" part)
        gunicorn += ["--bind", env["GUNICORN_BIND"], "--workers", "1", "--threads", "2"]
    server = Process([*gunicorn, "walletd.wsgi:app"], workdir, env, tmp_path / "web.log")
    processes.append(server)

    ready = _wait_for(base + _readiness_path(), server)
    assert ready.status_code == 200
    served = time.monotonic()

    # Templates, static files and pass templates are read from the installed package.
    page = httpx.get(base + "/dashboard/login", timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    assert httpx.get(base + "/static/css/app.css", timeout=10).status_code == 200
    admin = {"Authorization": f"Bearer {keys['admin_key']}"}
    member = httpx.post(base + "/api/v1/members", json={"name": "Ada"}, headers=admin, timeout=10)
    assert member.status_code == 201, member.text
    pkpass = httpx.get(member.json()["card"]["apple_pass_url"], timeout=30)
    assert pkpass.status_code == 200, pkpass.text
    assert pkpass.headers["content-type"] == "application/vnd.apple.pkpass"

    print(
        f"wheel built in {built - started:.1f} s, installed in {installed - built:.1f} s, "
        f"served {_readiness_path()} after {served - installed:.1f} s"
    )
