"""docker/entrypoint.sh: each role execs the right command; ledger roles refuse to start without URLs."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli.main import build_parser
from tests.packaging.entrypoint_run import REPO, run_entrypoint

LEDGER_ROLES = ["api", "flush", "gateway", "webhooks", "migrate", "payengine"]


@pytest.mark.parametrize(("args", "expected"), [
    (["api"], ["payengine", "serve"]),
    (["api", "--workers", "2"], ["payengine", "serve", "--workers", "2"]),
    (["flush"], ["payengine", "flush"]),
    (["flush", "--accounts", "a,b"], ["payengine", "flush", "--accounts", "a,b"]),
    (["gateway"], ["payengine", "gateway"]),
    (["webhooks"], ["payengine", "webhooks"]),
    (["migrate"], ["payengine", "migrate"]),
    (["payengine", "buffer", "status"], ["payengine", "buffer", "status"]),
    (["channel-sim", "--profile", "wxsim", "--port", "9101"],
     ["payengine", "channel-sim", "--host", "0.0.0.0", "--profile", "wxsim", "--port", "9101"]),
])
def test_role_execs_its_command(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    run = run_entrypoint(tmp_path, args)
    assert run.code == 0, run.stderr
    assert run.argv == expected
    build_parser().parse_args(expected[1:])  # the real CLI accepts exactly what the image runs


def test_locust_role_runs_the_packaged_locustfile(tmp_path: Path) -> None:
    run = run_entrypoint(tmp_path, ["locust", "--master", "--host", "http://api:8080"], urls=False)
    assert run.code == 0, run.stderr
    assert run.argv is not None and run.argv[0] == "locust" and run.argv[1] == "-f"
    assert Path(run.argv[2]) == REPO / "loadtests" / "locustfile.py"
    assert run.argv[3:] == ["--master", "--host", "http://api:8080"]


@pytest.mark.parametrize("role", LEDGER_ROLES)
@pytest.mark.parametrize("missing", [("PAYENGINE_DATABASE_URL",), ("PAYENGINE_REDIS_URL",),
                                     ("PAYENGINE_DATABASE_URL", "PAYENGINE_REDIS_URL")])
def test_ledger_roles_refuse_without_server_urls(tmp_path: Path, role: str, missing: tuple[str, ...]) -> None:
    present = {"PAYENGINE_DATABASE_URL": "postgresql://x@pg/db", "PAYENGINE_REDIS_URL": "redis://r:6379"}
    env = {k: ("" if k in missing else v) for k, v in present.items()}
    run = run_entrypoint(tmp_path, [role], env=env, urls=False)
    assert run.code == 64
    assert run.argv is None  # nothing was started, in particular no embedded server
    for name in missing:
        assert name in run.stderr
    assert "no embedded servers" in run.stderr


def test_channel_sim_needs_no_servers(tmp_path: Path) -> None:
    run = run_entrypoint(tmp_path, ["channel-sim", "--profile", "banksim"], urls=False)
    assert run.code == 0 and run.argv is not None and run.argv[1] == "channel-sim"


@pytest.mark.parametrize("args", [[], ["servers", "start"], ["bash"]])
def test_unknown_or_missing_role_is_refused(tmp_path: Path, args: list[str]) -> None:
    run = run_entrypoint(tmp_path, args)
    assert run.code == 64 and run.argv is None and "usage" in run.stderr


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503 if self.path == "/down" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_healthcheck(tmp_path: Path, health_server: int) -> None:
    port = health_server
    assert run_entrypoint(tmp_path, ["healthcheck"], env={"PAYENGINE_PORT": str(port)}).code == 0
    assert run_entrypoint(tmp_path, ["healthcheck", f"http://127.0.0.1:{port}/sim"]).code == 0  # 404: alive
    assert run_entrypoint(tmp_path, ["healthcheck", f"http://127.0.0.1:{port}/down"]).code == 1
    assert run_entrypoint(tmp_path, ["healthcheck"], env={"PAYENGINE_PORT": "1"}).code == 1
