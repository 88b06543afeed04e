"""The desk's gauges, read at each scrape: proposals waiting for a second operator (count and oldest age, by kind)
and reconciliation differences not closed yet."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api
from tests.desk.desk import DeskHttp, wallet_of, who


async def _samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with api.session.get(api.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


OPEN = ("payengine_desk_open_proposals", (("kind", "adjustment"),))
OLDEST = ("payengine_desk_oldest_proposal_age_seconds", (("kind", "adjustment"),))


async def test_open_proposals_are_counted_until_decided(api: Api) -> None:
    desk, client = DeskHttp(api), await api.merchant()
    _, wallet = await wallet_of(api, client, 0)
    before = await _samples(api)
    assert ("payengine_recon_open_differences", ()) in before
    assert ("payengine_recon_oldest_difference_age_seconds", ()) in before
    assert (("payengine_desk_open_proposals", (("kind", "reversal"),))) in before
    p = (await desk.propose("ADJ_CUSTOMER_COMPENSATION", 10, who(), {"customer_wallet": wallet})).body
    waiting = await _samples(api)
    assert waiting[OPEN] == before[OPEN] + 1
    assert waiting[OLDEST] > 0
    assert (await desk.decide(p["id"], "approve", who())).status == 200
    assert (await _samples(api))[OPEN] == before[OPEN]
