"""Every Redis key the buffer uses, built here and nowhere else.

Each account's keys share the hash tag ``{account_id}``, so in a Redis Cluster one slot holds the
whole buffer of one (sub-)account and every Lua script touches exactly one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "pe:buf"


@dataclass(frozen=True, slots=True)
class AccountKeys:
    """The keys of one account's buffer.

    state: hash of applied (cached PostgreSQL balance), pending (net of queued legs), reserved (open
      reservations), seq (last buffer sequence), loaded (present once applied/pending came from one
      PostgreSQL snapshot), plus flush statistics.
    queue: sorted set, member = leg (``txn_no:leg_no``), score = buffer sequence.
    legs: hash, leg -> ``seq|delta|enqueued_ms`` (dedupes re-deliveries; gives deltas and ages).
    reservations: hash, reservation id -> ``amount|created_ms``.
    applied: sorted set of legs recently applied (score = applied ms), so a late re-delivery of a
      leg that was already flushed is not counted as pending again.
    """

    account_id: str
    state: str
    queue: str
    legs: str
    reservations: str
    applied: str

    def all(self) -> tuple[str, str, str, str, str]:
        return (self.state, self.queue, self.legs, self.reservations, self.applied)


def account_keys(account_id: str) -> AccountKeys:
    tag = f"{PREFIX}:{{{account_id}}}"
    return AccountKeys(
        account_id=account_id,
        state=f"{tag}:st",
        queue=f"{tag}:q",
        legs=f"{tag}:legs",
        reservations=f"{tag}:res",
        applied=f"{tag}:done",
    )


def leg_member(txn_no: str, leg_no: int) -> str:
    """A leg's identity in the buffer: unique by the journal's (txn_no, leg_no) key."""
    return f"{txn_no}:{leg_no}"


def parse_leg_member(member: str) -> tuple[str, int]:
    txn_no, _, leg_no = member.partition(":")
    return txn_no, int(leg_no)
