"""What every wire type shares: the field types (amounts, currencies, references, text) and the request base.

Requests are frozen and reject unknown fields. Strings that reach PostgreSQL exclude NUL (text columns cannot
hold it). The same types validate requests and generate /openapi.json, so the contract cannot drift.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from engine.settings import REQUEST_AMOUNT_CEILING_MINOR

# A request never moves more than 10^15 minor units (the schema says so); a lower business limit per currency
# (PAYENGINE_AMOUNT_MAX, default 10^12) is checked by the flows. Sums of amounts stay far inside bigint.
Amount = Annotated[int, Meta(ge=1, le=REQUEST_AMOUNT_CEILING_MINOR,
                             description="positive integer in minor units, at most 10^15 (and the currency's limit)")]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code")]
Ref = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.:-]+$")]
ObjectId = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_]+$")]
Text = Annotated[str, Meta(max_length=500, pattern="^[^\\x00]*$")]
MetaKey = Annotated[str, Meta(min_length=1, max_length=40, pattern="^[A-Za-z0-9_.-]+$")]
Metadata = Annotated[dict[MetaKey, Text], Meta(max_length=50)]
ChannelName = Annotated[str, Meta(pattern="^[a-z0-9_-]{1,32}$")]


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class NoQuery(Request, frozen=True, forbid_unknown_fields=True):
    pass
