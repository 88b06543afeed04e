"""What every wire type shares: the field types (amounts, currencies, references, text) and the request base.

Requests are frozen and reject unknown fields. Strings that reach PostgreSQL exclude NUL (text columns cannot
hold it). The same types validate requests and generate /openapi.json, so the contract cannot drift.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from accounts.money import AMOUNT_MAX_MINOR

Amount = Annotated[int, Meta(ge=1, le=AMOUNT_MAX_MINOR, description="positive integer in minor units")]
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
