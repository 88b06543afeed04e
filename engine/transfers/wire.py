"""Wire types of the transfer endpoints (msgspec; requests frozen and rejecting unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from engine.transfers.states import TransferSource, TransferStatus
from engine.web.wire import Amount, Currency, Metadata, ObjectId, Ref, Request, Text


class CreateTransfer(Request, frozen=True, forbid_unknown_fields=True):
    """``source`` 'customer': from_customer_id's wallet pays; 'merchant': the merchant's available
    balance pays (cash-back). The payee is always a customer of the same merchant."""

    # The rule between fields, for /openapi.json (engine/http/openapi.py merges it into the schema).
    json_schema_rules: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"source": {"const": "customer"}}, "required": ["source"]},
        "then": {"required": ["from_customer_id"], "properties": {"from_customer_id": {"type": "string"}}},
        "else": {"properties": {"from_customer_id": {"type": "null"}}},
    }

    transfer_no: Ref
    amount: Amount
    currency: Currency
    source: TransferSource
    to_customer_id: ObjectId
    from_customer_id: ObjectId | None = None
    description: Text | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class ListTransfersQuery(Request, frozen=True, forbid_unknown_fields=True):
    transfer_no: Ref | None = None
    customer_id: ObjectId | None = None  # payer or payee
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    starting_after: ObjectId | None = None


class Transfer(msgspec.Struct, frozen=True):
    id: str
    transfer_no: str
    source: TransferSource
    from_customer_id: str | None
    to_customer_id: str
    amount: int
    currency: str
    status: TransferStatus
    txn_no: str
    description: str | None
    metadata: dict[str, str]
    created_at: datetime
    object: Literal["transfer"] = "transfer"


class TransferList(msgspec.Struct, frozen=True):
    data: list[Transfer]
    has_more: bool
    object: Literal["list"] = "list"
