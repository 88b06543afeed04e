"""What a desk proposal can be: its kind and its status, each named once.

A proposal starts ``proposed``; a second operator moves it to ``approved`` (which means booked: the status and the
entry commit together) or ``rejected``; one nobody decided within PAYENGINE_DESK_PROPOSAL_TTL_S becomes
``expired``. Every move is a compare-and-set from ``proposed`` (store.py), so a proposal is decided once.
"""

from __future__ import annotations

import enum


class ProposalKind(enum.StrEnum):
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"


class ProposalStatus(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"  # booked
    REJECTED = "rejected"
    EXPIRED = "expired"


# Who the audit trail names for what no person did (a proposal reaching its expiry).
SYSTEM_OPERATOR = "system"
