"""engine/keys.py: the key strings a running Redis holds stay exactly what they were, and each subject's or
merchant's keys share one Redis Cluster slot."""

from __future__ import annotations

import re
from datetime import date

from redis.crc import key_slot

from engine import keys
from engine.controls.limits import METHODS

DAY = date(2026, 12, 7)


def test_controls_keys_of_a_customer_are_the_strings_redis_holds() -> None:
    k = keys.subject_keys("mch_1", "cus_2", DAY, "CNY", METHODS)
    tag = "pe:lim:{c:mch_1:cus_2}"
    assert k.tag == tag
    assert (k.day, k.month, k.day_preloaded, k.month_preloaded) == (
        f"{tag}:d:20261207", f"{tag}:m:202612", f"{tag}:pd:20261207", f"{tag}:pm:202612")
    assert k.velocity == (f"{tag}:v:wallet", f"{tag}:v:channel", f"{tag}:v:transfer", f"{tag}:v:payout")
    assert k.history == (f"{tag}:h:CNY:wallet", f"{tag}:h:CNY:channel", f"{tag}:h:CNY:transfer",
                         f"{tag}:h:CNY:payout")
    assert k.velocity_of("transfer") == "pe:lim:{c:mch_1:cus_2}:v:transfer"
    assert k.history_of("payout") == "pe:lim:{c:mch_1:cus_2}:h:CNY:payout"
    assert keys.check_marker(k, "adm_9") == "pe:lim:{c:mch_1:cus_2}:c:adm_9"
    assert keys.release_marker(k, "adm_9") == "pe:lim:{c:mch_1:cus_2}:r:adm_9"


def test_controls_keys_of_a_merchant_are_the_strings_redis_holds() -> None:
    k = keys.subject_keys("mch_1", None, date(2026, 1, 31), "USD", METHODS)
    assert k.day == "pe:lim:{m:mch_1}:d:20260131" and k.month == "pe:lim:{m:mch_1}:m:202601"
    assert k.history_of("wallet") == "pe:lim:{m:mch_1}:h:USD:wallet"
    assert keys.counter_field("USD", keys.ANY_METHOD, "a") == "USD|*|a"
    assert keys.counter_field("USD", "wallet", "n") == "USD|wallet|n"
    assert keys.controls_keys_pattern() == "pe:lim:*"


def test_rate_bucket_and_expiry_queue_are_the_strings_redis_holds() -> None:
    assert keys.rate_bucket_key("mch_1") == "pe:rl:{mch_1}"
    assert keys.expiry_queue_key() == "pe:{expiry}:due"
    assert keys.expiry_member("mch_1", "pay_2") == "mch_1:pay_2"
    assert keys.parse_expiry_member("mch_1:pay_2") == ("mch_1", "pay_2")


def test_every_key_of_a_subject_shares_one_cluster_slot() -> None:
    for customer_id in ("cus_2", None):
        k = keys.subject_keys("mch_1", customer_id, DAY, "CNY", METHODS)
        every = (*k.all(), keys.check_marker(k, "adm_9"), keys.release_marker(k, "adm_9"))
        assert len({key_slot(key.encode()) for key in every}) == 1, every


def test_a_customer_and_its_merchant_are_different_subjects() -> None:
    """A customer's keys and its merchant's keys are checked by separate script calls: different tags."""
    customer = keys.subject_keys("mch_1", "cus_2", DAY, "CNY", METHODS)
    merchant = keys.subject_keys("mch_1", None, DAY, "CNY", METHODS)
    assert customer.tag != merchant.tag and not set(customer.all()) & set(merchant.all())


def test_new_id_is_its_prefix_and_96_random_bits() -> None:
    made = {keys.new_id(keys.PAYMENT) for _ in range(100)}
    assert len(made) == 100 and all(re.fullmatch(r"pay_[0-9a-f]{24}", i) for i in made)


ID_PREFIXES = {
    "PAYMENT": "pay", "REFUND": "rf", "VOUCHER": "vch", "CUSTOMER": "cus", "EVENT": "evt", "TOPUP": "tu",
    "MERCHANT": "mch", "ACCOUNT": "acct", "TRANSFER": "tr", "PAYOUT": "po", "API_KEY": "key", "FEE_INVOICE": "finv",
    "RISK_RULE": "rr", "ADMISSION": "adm", "RECON_RUN": "rcn", "SETTLEMENT_BATCH": "stl", "EXCEPTION_RECORD": "exc",
}


def test_id_prefixes_are_the_ones_stored_ids_carry_and_no_two_kinds_share_one() -> None:
    """Ids are stored by merchants and in every table: a prefix never changes once ids carry it. A new
    prefix is added here too, deliberately."""
    defined = {name: value for name, value in vars(keys).items()
               if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z]+", value)}
    assert defined == ID_PREFIXES
    assert len(set(defined.values())) == len(defined)


def test_secret_prefixes_are_the_ones_merchants_hold() -> None:
    """The prefix is part of the HMAC key merchants sign with: changing it changes every secret."""
    assert (keys.API_SECRET_PREFIX, keys.WEBHOOK_SECRET_PREFIX) == ("sk_", "whsec_")

