"""`walletd serve` runs granian with the settings gunicorn.conf.py reads."""

from __future__ import annotations

import pytest

from walletd.serve import granian_argv


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_granian_gets_the_bind_workers_and_threads_of_the_gunicorn_variables() -> None:
    argv = granian_argv(
        {"GUNICORN_BIND": "127.0.0.1:9000", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "6"}
    )
    assert argv[1:3] == ["-m", "granian"]
    assert _option(argv, "--interface") == "wsgi"
    assert (_option(argv, "--host"), _option(argv, "--port")) == ("127.0.0.1", "9000")
    assert (_option(argv, "--workers"), _option(argv, "--blocking-threads")) == ("3", "6")
    assert argv[-1] == "walletd.wsgi:app"


def test_a_worker_that_will_not_stop_is_killed_after_30_seconds_or_as_set() -> None:
    assert _option(granian_argv({}), "--workers-kill-timeout") == "30"
    argv = granian_argv({"GRANIAN_WORKERS_KILL_TIMEOUT": "5"})
    assert _option(argv, "--workers-kill-timeout") == "5"


def test_by_default_one_worker_per_core_with_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("multiprocessing.cpu_count", lambda: 3)
    argv = granian_argv({})
    assert (_option(argv, "--workers"), _option(argv, "--blocking-threads")) == ("3", "2")


def test_port_alone_binds_every_interface() -> None:
    argv = granian_argv({"PORT": "8123"})
    assert (_option(argv, "--host"), _option(argv, "--port")) == ("0.0.0.0", "8123")


@pytest.mark.parametrize(
    "environ",
    [
        {"WEB_CONCURRENCY": "0"},
        {"GUNICORN_THREADS": "four"},
        {"PORT": "８０"},
        {"PORT": "-1"},
        {"GRANIAN_WORKERS_KILL_TIMEOUT": "30s"},
    ],
)
def test_nonsense_settings_are_refused_with_the_name(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="must be a positive whole number"):
        granian_argv(environ)
