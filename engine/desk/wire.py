"""Wire types of the desk's admin API (msgspec; requests frozen and rejecting unknown fields).

Every action names its ``operator``: the admin token authenticates the tool, the operator names the person,
and four eyes compare those names.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from engine.audit.wire import OperatorName
from engine.desk.states import ProposalKind, ProposalStatus
from engine.web.wire import Amount, Currency, ObjectId, Request, Text

Role = Annotated[str, Meta(pattern="^[a-z_]{1,40}$", description="an account role of the code's posting rule")]
TxnNo = Annotated[str, Meta(pattern="^[0-9]{32}$", description="a journal entry's 32-digit transaction number")]
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern="^[^\\x00]*$")]


class ProposeAdjustment(Request, frozen=True, forbid_unknown_fields=True):
    """``accounts`` names an account for each of the code's roles the platform does not fill itself."""

    code: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Z0-9_]+$")]
    amount: Amount
    currency: Currency
    reason: Reason
    operator: OperatorName
    accounts: Annotated[dict[Role, ObjectId], Meta(max_length=8)] = msgspec.field(default_factory=dict)
    evidence: Text | None = None  # a ticket, the channel's letter, a file name: where the proof is


class ProposeReversal(Request, frozen=True, forbid_unknown_fields=True):
    txn_no: TxnNo
    reason: Reason
    operator: OperatorName
    accounting_date: date | None = None  # the original entry's date, when the caller knows it (a check)
    evidence: Text | None = None


class Decide(Request, frozen=True, forbid_unknown_fields=True):
    operator: OperatorName
    note: Text | None = None


class ListProposalsQuery(Request, frozen=True, forbid_unknown_fields=True):
    status: ProposalStatus | None = None
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    starting_after: ObjectId | None = None


class Proposal(msgspec.Struct, frozen=True):
    id: str
    kind: ProposalKind
    status: ProposalStatus
    code: str
    amount: int
    currency: str
    accounts: dict[str, str]  # role -> account id, platform roles included
    original_txn_no: str | None  # reversals: the entry mirrored
    reason: str
    evidence: str | None
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    txn_no: str | None  # the entry booked on approval (its ref is this proposal's id)
    recon_item_id: int | None  # the reconciliation difference this proposal resolves
    object: Literal["desk_proposal"] = "desk_proposal"


class ProposalList(msgspec.Struct, frozen=True):
    data: list[Proposal]
    has_more: bool
    object: Literal["list"] = "list"


class CodeLeg(msgspec.Struct, frozen=True):
    role: str
    side: Literal["D", "C"]


class AdjustmentCodeView(msgspec.Struct, frozen=True):
    code: str
    description: str
    legs: list[CodeLeg]
    named_roles: list[str]  # the proposal's ``accounts`` names one account of each
    platform_roles: list[str]  # filled with the platform's own account in the currency


class AdjustmentCodeList(msgspec.Struct, frozen=True):
    data: list[AdjustmentCodeView]
    object: Literal["list"] = "list"
