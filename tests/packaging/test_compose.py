"""docker-compose.yml without Docker: every service runs a real command with settings that parse,
depends_on and healthchecks agree, and nothing relies on embedded servers."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from engine.bootstrap import create_app
from engine.cli.main import build_parser
from engine.settings import Settings
from tests.packaging.entrypoint_run import REPO, VENV_BIN, run_entrypoint

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if "build" in s}  # services running the payengine image
LEDGER_ROLES = {"api", "flush", "gateway", "webhooks", "migrate", "payengine"}


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


@functools.cache
def _real_help(program: str, subcommand: str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV_BIN / program), *([subcommand] if subcommand else []), "--help"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _healthy(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    return bool(check) and not check.get("disable") and bool(check.get("test"))


def test_every_role_is_there() -> None:
    roles = {s["command"][0] for s in OURS.values()}
    assert roles >= {"migrate", "api", "flush", "gateway", "webhooks", "channel-sim", "locust"}
    assert {"postgres", "redis"} <= SERVICES.keys()
    assert SERVICES["api"]["deploy"]["replicas"] == 2
    assert "--master" in SERVICES["locust"]["command"]


@pytest.mark.parametrize("name", sorted(OURS))
def test_command_is_a_real_subcommand(name: str, tmp_path: Path) -> None:
    """The entrypoint turns the service's command into argv; the real CLI must accept it."""
    run = run_entrypoint(tmp_path, list(OURS[name]["command"]), env=_env(OURS[name]))
    assert run.code == 0, run.stderr
    assert run.argv is not None
    program, *argv = run.argv
    if program == "payengine":
        build_parser().parse_args(argv)
        real = _real_help("payengine", argv[0])
        assert real.returncode == 0, real.stderr
    else:
        assert program == "locust"
        assert Path(argv[1]).is_file()
        real = _real_help("locust", "")
        assert real.returncode == 0
        for flag in (a for a in argv[2:] if a.startswith("--")):
            assert flag in real.stdout, flag


@pytest.mark.parametrize("name", sorted(n for n, s in OURS.items() if s["command"][0] in LEDGER_ROLES))
def test_ledger_services_use_the_compose_servers(name: str) -> None:
    env = _env(OURS[name])
    settings = Settings.from_env(env)  # every variable parses (channels spec included)
    assert set(k for k in env if k.startswith("PAYENGINE_")) <= set(Settings.variables())
    db, redis = urlsplit(settings.database_url), urlsplit(settings.redis_url)
    assert db.hostname in SERVICES and SERVICES[db.hostname]["image"].startswith("postgres")
    assert redis.hostname in SERVICES and SERVICES[redis.hostname]["image"].startswith("redis")
    assert "volumes" not in OURS[name]  # no data dir to keep: no embedded server state


def test_channels_point_at_the_simulators_and_back_at_the_api() -> None:
    settings = Settings.from_env(_env(OURS["gateway"]))
    sims = {s["command"][s["command"].index("--profile") + 1]: (n, s) for n, s in OURS.items()
            if s["command"][0] == "channel-sim"}
    assert {c.name for c in settings.channels} == set(sims)
    for channel in settings.channels:
        name, sim = sims[channel.name]
        url = urlsplit(channel.base_url)
        assert url.hostname == name and str(url.port) == sim["command"][sim["command"].index("--port") + 1]
        assert sim["command"][sim["command"].index("--notify-base-url") + 1] == settings.public_url
    assert urlsplit(settings.public_url).hostname == "api"
    api_env = Settings.from_env(_env(OURS["api"]))
    assert urlsplit(settings.public_url).port == api_env.port
    assert not (api_env.gateway_in_process or api_env.webhooks_in_process or api_env.buffer_in_process_flushers)


def test_depends_on_is_coherent() -> None:
    for name, service in SERVICES.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert _healthy(SERVICES[target]), f"{name} waits for {target} to be healthy; it has no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is not a one-shot job"
            else:
                assert condition == "service_started"

    def reaches(name: str, goal: str, path: tuple[str, ...] = ()) -> bool:
        assert name not in path, f"depends_on cycle: {(*path, name)}"
        deps = SERVICES[name].get("depends_on") or {}
        return goal in deps or any(reaches(d, goal, (*path, name)) for d in deps)

    for name, service in OURS.items():
        if service["command"][0] in LEDGER_ROLES - {"migrate"}:
            assert reaches(name, "migrate"), f"{name} may start before the migrations"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_api_healthcheck_hits_a_real_route() -> None:
    assert SERVICES["api"]["healthcheck"]["test"] == ["CMD", "/app/docker/entrypoint.sh", "healthcheck"]
    app = create_app(Settings(), "postgresql://unused@localhost/x", "redis://localhost:1")
    assert "/healthz" in {r.resource.canonical for r in app.router.routes() if r.resource is not None}
