"""Every name the engine gives to something that outlives a process: id prefixes and Redis keys.

Built here and nowhere else (tests/engine/test_keys.py fails on one built elsewhere in engine/, and holds
the strings), so one page shows them all and a rename is one deliberate, visible change: ids and secrets
are stored by merchants, Redis keys hold live counters, and a key renamed by accident orphans live data.

Id prefixes (``new_id(PAYMENT)`` -> ``pay_<24 hex>``)::

    PAYMENT pay           REFUND rf             VOUCHER vch           CUSTOMER cus          EVENT evt
    TOPUP tu              MERCHANT mch          ACCOUNT acct          TRANSFER tr           PAYOUT po
    API_KEY key           FEE_INVOICE finv      RISK_RULE rr          ADMISSION adm         RECON_RUN rcn
    SETTLEMENT_BATCH stl  EXCEPTION_RECORD exc

Secret prefixes (derived secrets, shown to the merchant once): API_SECRET_PREFIX ``sk_``,
WEBHOOK_SECRET_PREFIX ``whsec_``.

Redis keys. ``{...}`` is the Redis Cluster hash tag: keys with the same tag live on one slot, so each
Lua script touches one slot. A controls *subject* is ``c:<merchant id>:<customer id>`` (a customer of a
merchant) or ``m:<merchant id>`` (the merchant itself)::

    family          key                                             type        one slot per
    limit counters  pe:lim:{<subject>}:d:<yyyymmdd>, :m:<yyyymm>    hash        subject
    preloaded ids   pe:lim:{<subject>}:pd:<yyyymmdd>, :pm:<yyyymm>  set         subject
    velocity log    pe:lim:{<subject>}:v:<method>                   sorted set  subject
    amount history  pe:lim:{<subject>}:h:<currency>:<method>        hash        subject
    check marker    pe:lim:{<subject>}:c:<admission id>             string      subject
    release marker  pe:lim:{<subject>}:r:<admission id>             string      subject
    rate bucket     pe:rl:{<merchant id>}                           hash        merchant
    expiry queue    pe:{expiry}:due                                 sorted set  (one key)
                    member <merchant id>:<payment id>, score the deadline (unix s)

The buffer's keys (``pe:buf:{<account id>}:...``) are built in buffer/keys.py: the buffer never
imports the engine.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import date

# Id prefixes: new_id adds the "_" and the random part.
PAYMENT, REFUND, VOUCHER, CUSTOMER, EVENT, TOPUP, MERCHANT, ACCOUNT = (
    "pay", "rf", "vch", "cus", "evt", "tu", "mch", "acct")
TRANSFER = "tr"
PAYOUT = "po"
API_KEY = "key"  # one of a merchant's signing keys (its id, not its secret)
FEE_INVOICE = "finv"
RISK_RULE = "rr"
ADMISSION = "adm"  # a limit usage row: one attempt admitted by the controls
RECON_RUN = "rcn"
SETTLEMENT_BATCH = "stl"
EXCEPTION_RECORD = "exc"  # an exception the gateway opened for operations
ADJUSTMENT, REVERSAL = "adj", "rev"  # exception desk proposals (engine/desk/)

ID_RANDOM_BYTES = 12  # 96 bits: unguessable across merchants, so an id reveals nothing about volume or order

# Derived secrets (HMACs, never stored by us) start with these. The whole string, prefix included, is the
# HMAC key merchants sign and verify with: changing a prefix changes every merchant's secret.
API_SECRET_PREFIX = "sk_"
WEBHOOK_SECRET_PREFIX = "whsec_"


def new_id(prefix: str) -> str:
    """``<prefix>_<24 hex digits>``: opaque, random, typed by its prefix."""
    return f"{prefix}_{secrets.token_hex(ID_RANDOM_BYTES)}"


# Redis keys: "pe" is the engine's namespace in a shared Redis.
CONTROLS_PREFIX = "pe:lim"
RATE_BUCKET_PREFIX = "pe:rl"
EXPIRY_QUEUE = "pe:{expiry}:due"  # hash tag {expiry}: any companion key would share its slot

ANY_METHOD = "*"  # in a counter field: all methods together


@dataclass(frozen=True, slots=True)
class SubjectKeys:
    """The controls' keys of one subject, for one day and one currency.

    day / month: hashes of counters, field ``currency|method|a`` (amount) and ``|n`` (count), plus
    ``loaded`` once filled from PostgreSQL. velocity: per method (``methods`` order), a sorted set of the
    customer's attempt ids of that method scored by time (ms), whatever their currency (velocity counts
    attempts). history: per method, a hash n, sum, max of the customer's admitted amounts of that method in
    one currency (the attempt's: amounts of different currencies are not comparable), plus ``loaded``. A
    rule scoped to some methods reads only their logs and histories.
    day_preloaded / month_preloaded: sets of admission ids whose amounts a rebuild from PostgreSQL already
    put into day / month (their rows were committed, their own check had not run yet): their check must
    not add them a second time."""

    tag: str
    methods: tuple[str, ...]
    day: str
    month: str
    day_preloaded: str
    month_preloaded: str
    velocity: tuple[str, ...]
    history: tuple[str, ...]

    def velocity_of(self, method: str) -> str:
        return self.velocity[self.methods.index(method)]

    def history_of(self, method: str) -> str:
        return self.history[self.methods.index(method)]

    def all(self) -> tuple[str, ...]:
        """Every key of the subject for the day and the currency: what a Redis loss takes."""
        return (self.day, self.month, self.day_preloaded, self.month_preloaded, *self.velocity, *self.history)


def subject_tag(merchant_id: str, customer_id: str | None) -> str:
    """What goes between the braces: the customer of a merchant, or the merchant itself."""
    return f"c:{merchant_id}:{customer_id}" if customer_id is not None else f"m:{merchant_id}"


SUBJECT_KEYS_CACHED = 4096  # subjects whose key sets are kept: a busy merchant and its active customers


@functools.lru_cache(maxsize=SUBJECT_KEYS_CACHED)
def subject_keys(merchant_id: str, customer_id: str | None, day: date, currency: str,
                 methods: tuple[str, ...]) -> SubjectKeys:
    """The subject's keys an attempt of ``day`` in ``currency`` touches (only the histories are per
    currency); ``methods`` is the controls' method list, whose order the scripts' key order follows.

    Built for every limit check of every request (two subjects, fourteen keys each); the result is frozen
    and depends on the arguments only, so recent subjects' key sets are kept."""
    tag = f"{CONTROLS_PREFIX}:{{{subject_tag(merchant_id, customer_id)}}}"
    return SubjectKeys(
        tag=tag,
        methods=tuple(methods),
        day=f"{tag}:d:{day:%Y%m%d}",
        month=f"{tag}:m:{day:%Y%m}",
        day_preloaded=f"{tag}:pd:{day:%Y%m%d}",
        month_preloaded=f"{tag}:pm:{day:%Y%m}",
        velocity=tuple(f"{tag}:v:{method}" for method in methods),
        history=tuple(f"{tag}:h:{currency}:{method}" for method in methods),
    )


def counter_field(currency: str, method: str, metric: str) -> str:
    """A field of the day / month hashes: ``metric`` a (amount) or n (count); ``method`` a method or
    ANY_METHOD. The scripts (engine/controls/scripts.py) build the same fields."""
    return f"{currency}|{method}|{metric}"


def check_marker(k: SubjectKeys, attempt_id: str) -> str:
    """The outcome of an attempt's check on this subject, kept briefly: a client retry of the script (after
    a timeout, when the first run did happen) answers the same instead of counting twice."""
    return f"{k.tag}:c:{attempt_id}"


def release_marker(k: SubjectKeys, attempt_id: str) -> str:
    """Present once an attempt's usage was given back on this subject: a retried release gives back once."""
    return f"{k.tag}:r:{attempt_id}"


def controls_keys_pattern() -> str:
    """Every controls key (operations and tests: SCAN for what a Redis loss would take)."""
    return f"{CONTROLS_PREFIX}:*"


def rate_bucket_key(merchant_id: str) -> str:
    """The merchant's token bucket (engine/http/ratelimit.py), alone on its merchant's slot."""
    return f"{RATE_BUCKET_PREFIX}:{{{merchant_id}}}"


def expiry_queue_key() -> str:
    """The one sorted set of unpaid payments' deadlines (engine/payments/expiry.py)."""
    return EXPIRY_QUEUE


def expiry_member(merchant_id: str, payment_id: str) -> str:
    """A payment in the expiry queue. Ids are [A-Za-z0-9_], so ':' separates them unambiguously."""
    return f"{merchant_id}:{payment_id}"


def parse_expiry_member(member: str) -> tuple[str, str]:
    """(merchant id, payment id) of an expiry queue member."""
    merchant_id, _, payment_id = member.partition(":")
    return merchant_id, payment_id
