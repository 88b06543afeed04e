"""wxsim's payout wire (`channels.sim.wx_payouts`) converted to and from `channels.protocol`.

Only conversion lives here; `WxSimChannel` signs, sends and verifies the answers exactly as
for payments, so a forged "SUCCESS" bill is refused like a forged trade query.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import msgspec

from channels.errors import AmountMismatch, ChannelRejected, MalformedResponse, OrderNotFound, UnclearRefusal
from channels.protocol import PayoutRequest, PayoutResult, PayoutStatus

CREATE_PATH = "/v3/fund-app/mch-transfer/bank-transfer-bills"
_ACCOUNT_TYPES = {"bank_card": "BANK_CARD", "bank_account": "BANK_ACCOUNT"}
_STATES = {
    "ACCEPTED": PayoutStatus.PROCESSING,
    "PROCESSING": PayoutStatus.PROCESSING,
    "TRANSFERING": PayoutStatus.PROCESSING,
    "SUCCESS": PayoutStatus.SUCCEEDED,
    "FAIL": PayoutStatus.FAILED,
}

# Answers to a create that turn this transfer down for good and move nothing (bad parameters, no permission,
# too little balance). Any other code (INVALID_REQUEST: a bill already held under our out_bill_no with other
# content, ...) says nothing about whether the transfer exists: UnclearRefusal, and the caller queries.
DEFINITIVE_REFUSALS = frozenset({"PARAM_ERROR", "NO_AUTH", "NOT_ENOUGH"})


# Like the payment wire types: unknown fields are tolerated, a channel adds them without notice.
class Bill(msgspec.Struct, frozen=True):
    out_bill_no: str
    state: str
    transfer_amount: int
    currency: str
    transfer_bill_no: str | None = None
    fail_reason: str | None = None
    fail_message: str | None = None
    update_time: datetime | None = None


def create_body(channel: str, merchant_id: str, request: PayoutRequest) -> dict[str, object]:
    """The create request; ChannelRejected (nothing sent) for a destination kind wxsim lacks."""
    account_type = _ACCOUNT_TYPES.get(request.destination.kind)
    if account_type is None:
        raise ChannelRejected(channel, "create_payout", "INVALID_DESTINATION", repr(request.destination.kind))
    body: dict[str, object] = {
        "mchid": merchant_id,
        "out_bill_no": request.out_payout_no,
        "transfer_amount": request.amount_minor,
        "currency": request.currency,
        "account_type": account_type,
        "account_number": request.destination.number,
        "user_name": request.destination.holder_name,
        "transfer_remark": request.description,
    }
    if request.destination.bank_code:
        body["bank_code"] = request.destination.bank_code
    return body


def create_refusal(refused: ChannelRejected) -> ChannelRejected:
    """What a business answer to a create means: the refusal itself when it is definitive (or not found),
    else UnclearRefusal (outcome unknown)."""
    if refused.code in DEFINITIVE_REFUSALS or isinstance(refused, OrderNotFound | UnclearRefusal):
        return refused
    return UnclearRefusal(refused.channel, refused.operation, refused.code, refused.detail)


def query_path(out_payout_no: str) -> str:
    return f"{CREATE_PATH}/out-bill-no/{quote(out_payout_no, safe='')}"


def payout_result(channel: str, out_payout_no: str, bill: Bill) -> PayoutResult:
    """Our result for the bill; MalformedResponse for another payout's bill or an unknown state."""
    status = _STATES.get(bill.state)
    if status is None or bill.out_bill_no != out_payout_no:
        raise MalformedResponse(channel, f"bill {bill.out_bill_no!r} in state {bill.state!r} for {out_payout_no!r}")
    failed = status is PayoutStatus.FAILED
    return PayoutResult(
        out_payout_no=bill.out_bill_no,
        status=status,
        channel_payout_no=bill.transfer_bill_no,
        failure_code=(bill.fail_reason or "UNKNOWN") if failed else None,
        failure_message=bill.fail_message if failed else None,
        finished_at=bill.update_time if status is not PayoutStatus.PROCESSING else None,
        amount_minor=bill.transfer_amount,
        currency=bill.currency,
    )


def created_result(channel: str, request: PayoutRequest, bill: Bill) -> PayoutResult:
    """`payout_result` after checking the channel took the amount we asked for. AmountMismatch only for an
    answer about our bill (another bill is MalformedResponse): the channel holds our out_bill_no, for another
    amount or currency."""
    result = payout_result(channel, request.out_payout_no, bill)
    if (bill.transfer_amount, bill.currency) != (request.amount_minor, request.currency):
        raise AmountMismatch(
            channel, request.out_payout_no, request.amount_minor, bill.transfer_amount, request.currency,
            bill.currency, result.channel_payout_no,
        )
    return result
