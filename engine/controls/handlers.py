"""Admin endpoints of the controls (bearer admin token, checked by the API's auth middleware).

    GET|PUT        /admin/limits                      global default limits (PUT replaces the set)
    GET|PUT        /admin/merchants/{id}/limits       a merchant's overrides (+ the effective set)
    GET|POST       /admin/risk/rules                  list / create a risk rule
    GET|PUT|DELETE /admin/risk/rules/{id}             one rule (PUT replaces its definition)
    POST|DELETE    /admin/risk/blocklist              add / remove a customer or instrument
    GET            /admin/payments/{id}/controls      the risk decisions and limits recorded with a payment,
    GET            /admin/transfers/{id}/controls     ... with a transfer
    GET            /admin/payouts/{id}/controls       ... with a payout (one handler for the three: controls_handler)

Changes take effect at once in this process (its cache is invalidated) and within CONTROLS_CACHE_MS in
the others. Registered through the API's route table (engine/http/routes.py), so /openapi.json lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from engine.controls import store
from engine.controls import wire as controls_wire
from engine.controls import wire as cw
from engine.controls.errors import ControlNotFound, InvalidControl
from engine.controls.limits import LimitRule, effective_rules, validate_rules
from engine.controls.risk import RiskRule, validate_definition
from engine.instruments import instrument_digits
from engine.keys import RISK_RULE, new_id
from engine.services import services_of
from engine.web.decoding import decode_body
from engine.web.errors import ApiError
from engine.web.idempotency import ok_json
from engine.web.request import RAW_BODY
from engine.web.route import CONTROL_WRITE_ERRORS, RouteSpec

T = TypeVar("T")


def _decode(request: web.Request, type_: type[T]) -> T:
    """A well-formed body of the wrong shape is a malformed definition: 422 (unknown fields stay 400)."""
    try:
        return decode_body(request[RAW_BODY], type_)
    except ApiError as err:
        if err.code in ("parameter_invalid", "parameter_missing"):
            raise InvalidControl(err.param or "body", err.message) from None
        raise



def _spec(rule: LimitRule) -> cw.LimitSpec:
    return cw.LimitSpec(rule.scope, rule.window, rule.method, rule.currency, rule.amount_max, rule.count_max)


def _rules(specs: list[cw.LimitSpec]) -> list[LimitRule]:
    return validate_rules([LimitRule(s.scope, s.window, s.method, s.currency, s.amount_max, s.count_max)
                           for s in specs])


async def _limits_of(request: web.Request, merchant_id: str) -> list[LimitRule]:
    async with services_of(request).pool.acquire() as conn:
        return [r for m, r in await store.list_limit_rules(conn) if m == merchant_id]


async def _require_merchant(request: web.Request, merchant_id: str) -> None:
    async with services_of(request).pool.acquire() as conn:
        if not await store.merchant_exists(conn, merchant_id):
            raise ControlNotFound("merchant", merchant_id)


async def _replace(request: web.Request, merchant_id: str, rules: list[LimitRule]) -> None:
    async with services_of(request).pool.acquire() as conn, conn.transaction():
        await store.replace_limit_rules(conn, merchant_id, rules)
    services_of(request).gate.config.invalidate()


async def get_global_limits(request: web.Request) -> web.Response:
    return ok_json(cw.LimitSetView([_spec(r) for r in await _limits_of(request, "")]))


async def put_global_limits(request: web.Request) -> web.Response:
    rules = _rules(_decode(request, cw.PutLimits).limits)
    await _replace(request, "", rules)
    return ok_json(cw.LimitSetView([_spec(r) for r in rules]))


async def _merchant_view(request: web.Request, merchant_id: str) -> cw.MerchantLimitsView:
    async with services_of(request).pool.acquire() as conn:
        rows = await store.list_limit_rules(conn)
    own = [r for m, r in rows if m == merchant_id]
    defaults = [r for m, r in rows if m == ""]
    return cw.MerchantLimitsView(merchant_id, [_spec(r) for r in own],
                                 [_spec(r) for r in effective_rules(defaults, own)])


async def get_merchant_limits(request: web.Request) -> web.Response:
    merchant_id = request.match_info["id"]
    await _require_merchant(request, merchant_id)
    return ok_json(await _merchant_view(request, merchant_id))


async def put_merchant_limits(request: web.Request) -> web.Response:
    merchant_id = request.match_info["id"]
    rules = _rules(_decode(request, cw.PutLimits).limits)
    await _require_merchant(request, merchant_id)
    await _replace(request, merchant_id, rules)
    return ok_json(await _merchant_view(request, merchant_id))


def _risk_rule(rule_id: str, spec: cw.RiskRuleSpec) -> RiskRule:
    params = validate_definition(spec.kind, spec.action, spec.params, spec.methods, spec.name)
    return RiskRule(rule_id, spec.name, spec.kind, spec.action, params, spec.merchant_id,
                    tuple(dict.fromkeys(spec.methods)), spec.enabled)


def _rule_view(rule: RiskRule) -> cw.RiskRuleView:
    return cw.RiskRuleView(rule.id, rule.name, rule.kind, rule.action, dict(rule.params), rule.merchant_id,
                           list(rule.methods), rule.enabled)


async def list_rules(request: web.Request) -> web.Response:
    async with services_of(request).pool.acquire() as conn:
        rules = await store.list_risk_rules(conn)
    return ok_json(cw.RiskRuleList([_rule_view(r) for r in rules]))


async def get_rule(request: web.Request) -> web.Response:
    async with services_of(request).pool.acquire() as conn:
        rule = await store.get_risk_rule(conn, request.match_info["id"])
    if rule is None:
        raise ControlNotFound("risk rule", request.match_info["id"])
    return ok_json(_rule_view(rule))


async def _save_rule(request: web.Request, rule_id: str, create: bool) -> web.Response:
    rule = _risk_rule(rule_id, _decode(request, cw.RiskRuleSpec))
    async with services_of(request).pool.acquire() as conn, conn.transaction():
        if rule.merchant_id is not None and not await store.merchant_exists(conn, rule.merchant_id):
            raise InvalidControl("merchant_id", f"no such merchant: {rule.merchant_id}")
        if not await store.upsert_risk_rule(conn, rule, create):
            raise ControlNotFound("risk rule", rule_id)
    services_of(request).gate.config.invalidate()
    return ok_json(_rule_view(rule), 201 if create else 200)


async def create_rule(request: web.Request) -> web.Response:
    return await _save_rule(request, new_id(RISK_RULE), create=True)


async def update_rule(request: web.Request) -> web.Response:
    return await _save_rule(request, request.match_info["id"], create=False)


async def delete_rule(request: web.Request) -> web.Response:
    rule_id = request.match_info["id"]
    async with services_of(request).pool.acquire() as conn, conn.transaction():
        if not await store.delete_risk_rule(conn, rule_id):
            raise ControlNotFound("risk rule", rule_id)
    services_of(request).gate.config.invalidate()
    return ok_json(cw.Deleted(rule_id, True))


def _entry(request: web.Request) -> tuple[cw.BlocklistEntry, str | None]:
    """The entry and the keyed hash of its value; an instrument is hashed as the digits payouts compare
    (engine/instruments.py), so however it was typed it matches the same card or account. An instrument
    that is not a number has no such hash (None): adding it is refused, removing looks for it as typed."""
    entry = _decode(request, cw.BlocklistEntry)
    if entry.list not in ("customer", "instrument"):
        raise InvalidControl("list", f"list must be 'customer' or 'instrument', not {entry.list!r}")
    if not 1 <= len(entry.value) <= 200:
        raise InvalidControl("value", "value must be 1-200 characters")
    if entry.list == "customer":
        return entry, services_of(request).gate.digest(entry.list, entry.value)
    digits = instrument_digits(entry.value)
    return entry, services_of(request).gate.digest(entry.list, digits) if digits is not None else None


async def add_blocked(request: web.Request) -> web.Response:
    entry, digest = _entry(request)
    if digest is None:
        raise InvalidControl("value", "an instrument must be a card or bank account number: digits, "
                                      "optionally grouped with spaces or dashes")
    async with services_of(request).pool.acquire() as conn, conn.transaction():
        await store.add_blocklist(conn, entry.list, digest, entry.reason)
    services_of(request).gate.config.invalidate()
    return ok_json(cw.BlocklistView(entry.list, digest, entry.reason), 201)


async def remove_blocked(request: web.Request) -> web.Response:
    """Removes the entry for the value; for an instrument also an entry added before numbers were
    normalised, which was hashed exactly as typed (it never matched a payout, and only this finds it)."""
    entry, digest = _entry(request)
    candidates = [d for d in (digest, services_of(request).gate.digest(entry.list, entry.value)) if d is not None]
    async with services_of(request).pool.acquire() as conn, conn.transaction():
        removed = await store.remove_blocklist(conn, entry.list, candidates)
    if removed is None:
        raise ControlNotFound("blocklist entry", f"{entry.list}:{candidates[0][:12]}")
    services_of(request).gate.config.invalidate()
    return ok_json(cw.BlocklistView(entry.list, removed, None, deleted=True))


# kind -> the view of the record stored with it (engine/controls/store.py RECORD_COLUMNS says where).
_CONTROLS_VIEWS: dict[str, Callable[[str, dict[str, Any] | None], object]] = {
    "payment": cw.PaymentControlsView, "transfer": cw.TransferControlsView, "payout": cw.PayoutControlsView}


def controls_handler(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /admin/{kind}s/{id}/controls: the risk decisions and limits recorded with that payment, transfer or
    payout (controls null when no gate admitted it); 404 when there is no such one."""
    view = _CONTROLS_VIEWS[kind]

    async def get_controls(request: web.Request) -> web.Response:
        object_id = request.match_info["id"]
        async with services_of(request).pool.acquire() as conn:
            exists, controls = await store.read_controls(conn, kind, object_id)
        if not exists:
            raise ControlNotFound(kind, object_id)
        return ok_json(view(object_id, controls))

    return get_controls


get_payment_controls = controls_handler("payment")
get_transfer_controls = controls_handler("transfer")
get_payout_controls = controls_handler("payout")


# The writes change what every merchant's payments meet: tests/api/test_openapi_fuzz.py fuzzes them only
# against a private server of their own.
ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/admin/limits", get_global_limits, "The global default limits",
              controls_wire.LimitSetView, errors=(401,), auth="admin"),
    RouteSpec("PUT", "/admin/limits", put_global_limits,
              "Replace the global default limits (applied at once)", controls_wire.LimitSetView, 200,
              controls_wire.PutLimits, errors=CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("GET", "/admin/merchants/{id}/limits", get_merchant_limits,
              "A merchant's limit overrides and its effective limits", controls_wire.MerchantLimitsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("PUT", "/admin/merchants/{id}/limits", put_merchant_limits,
              "Replace a merchant's limit overrides", controls_wire.MerchantLimitsView, 200, controls_wire.PutLimits,
              errors=(*CONTROL_WRITE_ERRORS, 404), auth="admin"),
    RouteSpec("GET", "/admin/risk/rules", list_rules, "Every risk rule", controls_wire.RiskRuleList,
              errors=(401,), auth="admin"),
    RouteSpec("POST", "/admin/risk/rules", create_rule,
              "Create a risk rule (velocity, amount_anomaly, blocklist)", controls_wire.RiskRuleView, 201,
              controls_wire.RiskRuleSpec, errors=CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("GET", "/admin/risk/rules/{id}", get_rule, "One risk rule", controls_wire.RiskRuleView,
              errors=(401, 404), auth="admin"),
    RouteSpec("PUT", "/admin/risk/rules/{id}", update_rule, "Replace a risk rule's definition",
              controls_wire.RiskRuleView, 200, controls_wire.RiskRuleSpec, errors=(*CONTROL_WRITE_ERRORS, 404),
              auth="admin"),
    RouteSpec("DELETE", "/admin/risk/rules/{id}", delete_rule, "Delete a risk rule",
              controls_wire.Deleted, errors=(401, 404), auth="admin"),
    RouteSpec("POST", "/admin/risk/blocklist", add_blocked,
              "Block a customer or instrument (only its keyed hash is stored)", controls_wire.BlocklistView, 201,
              controls_wire.BlocklistEntry, errors=CONTROL_WRITE_ERRORS, auth="admin"),
    RouteSpec("DELETE", "/admin/risk/blocklist", remove_blocked, "Unblock a customer or instrument",
              controls_wire.BlocklistView, 200, controls_wire.BlocklistEntry,
              errors=(*CONTROL_WRITE_ERRORS, 404), auth="admin"),
    RouteSpec("GET", "/admin/payments/{id}/controls", get_payment_controls,
              "The risk decisions and limits recorded with a payment", controls_wire.PaymentControlsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("GET", "/admin/transfers/{id}/controls", get_transfer_controls,
              "The risk decisions and limits recorded with a transfer", controls_wire.TransferControlsView,
              errors=(401, 404), auth="admin"),
    RouteSpec("GET", "/admin/payouts/{id}/controls", get_payout_controls,
              "The risk decisions and limits recorded with a payout", controls_wire.PayoutControlsView,
              errors=(401, 404), auth="admin"),
)
