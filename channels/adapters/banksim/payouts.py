"""banksim's payout wire (`channels.sim.bank_payouts`) converted to and from `channels.protocol`.

Only conversion lives here; `BankSimChannel` signs every call and verifies every answer.
Amounts cross as major-unit strings and are converted exactly by `channels.amounts`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from channels.amounts import AmountFormatError, major_to_minor, minor_to_major
from channels.errors import AmountMismatch, ChannelRejected, MalformedResponse, OrderNotFound, UnclearRefusal
from channels.protocol import PayoutRequest, PayoutResult, PayoutStatus

Params = dict[str, str]

CREATE_METHOD = "fund.trans.uni.transfer"
QUERY_METHOD = "fund.trans.common.query"
NOT_FOUND_SUB_CODE = "ORDER_NOT_EXIST"
_PAYEE_TYPES = {"bank_card": "BANKCARD", "bank_account": "BANKACCOUNT"}
_STATES = {"DEALING": PayoutStatus.PROCESSING, "SUCCESS": PayoutStatus.SUCCEEDED, "FAIL": PayoutStatus.FAILED}
# Answers to a create that turn this transfer down for good and move nothing: bad parameters, a request the
# gateway could not authenticate or route, a payee the bank does not know, too little balance to pay from.
# Any other business code (ACQ.SYSTEM_ERROR above all, or a conflict with a transfer already held under our
# out_biz_no) says nothing about whether the transfer exists: UnclearRefusal, and the caller queries.
DEFINITIVE_REFUSALS = frozenset({
    "ACQ.INVALID_PARAMETER", "isv.invalid-signature", "isv.missing-method",
    "PAYEE_NOT_EXIST", "PAYEE_CARD_INFO_ERROR", "PAYER_BALANCE_NOT_ENOUGH",
})


def create_biz(channel: str, request: PayoutRequest) -> Params:
    """The create call's business fields; ChannelRejected (nothing sent) for an unknown kind."""
    payee_type = _PAYEE_TYPES.get(request.destination.kind)
    if payee_type is None:
        raise ChannelRejected(channel, "create_payout", "INVALID_DESTINATION", repr(request.destination.kind))
    return {
        "out_biz_no": request.out_payout_no,
        "trans_amount": minor_to_major(request.amount_minor),
        "currency": request.currency,
        "payee_type": payee_type,
        "payee_account": request.destination.number,
        "payee_name": request.destination.holder_name,
        "bank_code": request.destination.bank_code or "",
        "remark": request.description,
    }


def create_refusal(refused: ChannelRejected) -> ChannelRejected:
    """What a business answer to a create means: the refusal itself when it is definitive (or not found),
    else UnclearRefusal (outcome unknown)."""
    if refused.code in DEFINITIVE_REFUSALS or isinstance(refused, OrderNotFound | UnclearRefusal):
        return refused
    return UnclearRefusal(refused.channel, refused.operation, refused.code, refused.detail)


def _amount_minor(channel: str, fields: Params) -> int:
    try:
        return major_to_minor(fields.get("trans_amount", ""))
    except AmountFormatError as error:
        raise MalformedResponse(channel, f"trans_amount: {error}") from error


def payout_result(channel: str, out_payout_no: str, fields: Params) -> PayoutResult:
    """Our result for the transfer; MalformedResponse for another payout or an unreadable field."""
    status = _STATES.get(fields.get("status", ""))
    if status is None or fields.get("out_biz_no") != out_payout_no:
        raise MalformedResponse(channel, f"transfer {fields.get('out_biz_no')!r} status {fields.get('status')!r}")
    amount_minor = _amount_minor(channel, fields)
    finished_text = fields.get("gmt_finish", "")
    try:
        finished = datetime.strptime(finished_text, "%Y-%m-%d %H:%M:%S") if finished_text else None
    except ValueError as error:
        raise MalformedResponse(channel, f"gmt_finish {finished_text!r}") from error
    finished_at = None if finished is None else finished.replace(tzinfo=UTC)
    failed = status is PayoutStatus.FAILED
    return PayoutResult(
        out_payout_no=out_payout_no,
        status=status,
        channel_payout_no=fields.get("order_id"),
        failure_code=fields.get("error_code", "UNKNOWN") if failed else None,
        failure_message=fields.get("fail_reason") if failed else None,
        finished_at=finished_at if status is not PayoutStatus.PROCESSING else None,
        amount_minor=amount_minor,
        currency=fields.get("currency") or None,
    )


def created_result(channel: str, request: PayoutRequest, fields: Params) -> PayoutResult:
    """`payout_result` after checking the channel took the amount we asked for. AmountMismatch only for an
    answer about our transfer (another transfer's answer is MalformedResponse): the channel holds our
    out_biz_no, for another amount or currency."""
    result = payout_result(channel, request.out_payout_no, fields)
    if (result.amount_minor, result.currency) != (request.amount_minor, request.currency):
        raise AmountMismatch(
            channel, request.out_payout_no, request.amount_minor, result.amount_minor or 0, request.currency,
            result.currency or "", result.channel_payout_no,
        )
    return result
