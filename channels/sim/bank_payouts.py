"""banksim payouts, shaped after Alipay's fund transfer API, on the same `/gateway.do`.

- `method=fund.trans.uni.transfer` with `out_biz_no`, `trans_amount` (major units, "12.34"),
  `currency`, `payee_type` (`BANKCARD` | `BANKACCOUNT`), `payee_account`, `payee_name`,
  `bank_code`?, `remark`? → the transfer;
- `method=fund.trans.common.query` with `out_biz_no` → the transfer, or business error
  `ORDER_NOT_EXIST`.

A transfer reads `out_biz_no, order_id, trans_amount, currency, status` (`DEALING` |
`SUCCESS` | `FAIL`), `fail_reason` when failed, `gmt_create` and `gmt_finish` (bank time).
Signed like every gateway call: sorted `k=v` SHA-256 with the shared key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channels.amounts import major_to_minor, minor_to_major
from channels.sim.payout_desk import accept_payout, look_up_payout
from channels.sim.payouts import FAILURE_MESSAGES, PayoutAsk, PayoutState, SimPayout
from channels.sim.statement_csv import bank_time
from channels.sim.store import Refusal, SimRefused

if TYPE_CHECKING:
    from channels.sim.bank import BankSim

Params = dict[str, str]

CREATE_METHOD = "fund.trans.uni.transfer"
QUERY_METHOD = "fund.trans.common.query"
NOT_FOUND_SUB_CODE = "ORDER_NOT_EXIST"
_PAYEE_KINDS = {"BANKCARD": "bank_card", "BANKACCOUNT": "bank_account"}
_STATUS = {PayoutState.PROCESSING: "DEALING", PayoutState.SUCCESS: "SUCCESS", PayoutState.FAIL: "FAIL"}


class BankPayouts:
    def __init__(self, bank: BankSim) -> None:
        self.bank = bank
        self.rt = bank.rt

    def create(self, params: Params) -> Params:
        kind = _PAYEE_KINDS.get(params["payee_type"])
        if kind is None:
            raise SimRefused(Refusal.INVALID, f"unknown payee_type {params['payee_type']!r}")
        ask = PayoutAsk(
            out_payout_no=params["out_biz_no"],
            amount_minor=major_to_minor(params["trans_amount"]),
            currency=params.get("currency", self.bank.profile.currency),
            kind=kind,
            number=params["payee_account"],
            holder_name=params["payee_name"],
            bank_code=params.get("bank_code", ""),
            description=params.get("remark", ""),
        )
        return self.transfer_fields(accept_payout(self.rt, ask))

    def query(self, params: Params) -> Params:
        try:
            payout = look_up_payout(self.rt, params["out_biz_no"])
        except SimRefused as refused:
            if refused.refusal is not Refusal.NOT_FOUND:
                raise
            return self.bank.business_error(NOT_FOUND_SUB_CODE, refused.detail)
        return self.transfer_fields(payout)

    def transfer_fields(self, payout: SimPayout) -> Params:
        return {
            "code": "10000",
            "msg": "Success",
            "out_biz_no": payout.ask.out_payout_no,
            "order_id": payout.payout_id,
            "trans_amount": minor_to_major(payout.ask.amount_minor + self.rt.faults.payout_report_skew_minor),
            "currency": payout.ask.currency,
            "status": _STATUS[payout.state],
            "error_code": payout.failure_code or "",
            "fail_reason": FAILURE_MESSAGES.get(payout.failure_code, "transfer failed") if payout.failure_code else "",
            "gmt_create": bank_time(payout.created_at),
            "gmt_finish": bank_time(payout.finished_at),
        }
