"""Every JSON route of the API is in the route table (engine/http/routes.py ROUTES), so /openapi.json lists
it and the middlewares answer its errors and authentication the same way as everywhere else."""

from __future__ import annotations

from engine.http.app import build_http_app
from engine.http.routes import ROUTES
from engine.settings import Settings
from tests.api.conftest import Api

# Not JSON API routes: the probes, the metrics, the document itself, the channels' own notify protocol
# and the benchmark's ceiling.
OUTSIDE_THE_TABLE = frozenset({
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
    ("POST", "/channels/{channel}/notify"), ("POST", "/bench/noop"),
})


def _registered() -> set[tuple[str, str]]:
    app = build_http_app(Settings(bench_noop=True))
    routes = {(route.method, route.resource.canonical) for route in app.router.routes() if route.resource}
    # add_get also answers HEAD for its path; that is the GET route, not one of its own.
    return {(method, path) for method, path in routes if method != "HEAD" or ("GET", path) not in routes}


def test_every_registered_route_is_in_the_route_table() -> None:
    table = {(spec.method, spec.path) for spec in ROUTES}
    assert len(table) == len(ROUTES), "a route is in the table twice"
    missing = _registered() - table - OUTSIDE_THE_TABLE
    assert not missing, f"registered outside engine.http.routes.ROUTES: {sorted(missing)}"
    assert OUTSIDE_THE_TABLE <= _registered()  # the exceptions above still exist


def test_every_admin_route_needs_the_admin_token() -> None:
    wrong = [(spec.method, spec.path, spec.auth) for spec in ROUTES
             if spec.path.startswith("/admin/") != (spec.auth == "admin")]
    assert not wrong, f"an /admin route without auth='admin', or an admin route elsewhere: {wrong}"


async def test_openapi_lists_every_admin_route_with_the_admin_token(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        assert resp.status == 200
        paths = (await resp.json())["paths"]
    admin = [spec for spec in ROUTES if spec.path.startswith("/admin/")]
    assert admin
    for spec in admin:
        operation = paths.get(spec.path, {}).get(spec.method.lower())
        assert operation is not None, f"{spec.method} {spec.path} is missing from /openapi.json"
        assert operation["security"] == [{"adminToken": []}], (spec.method, spec.path)
        assert "401" in operation["responses"], (spec.method, spec.path)
