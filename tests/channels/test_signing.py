"""The two signature schemes, independent of any server."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels import signing

PARAMS = st.dictionaries(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), st.text(max_size=12), max_size=8
)


@given(PARAMS)
def test_bank_signature_does_not_depend_on_parameter_order(params: dict[str, str]) -> None:
    reordered = dict(reversed(list(params.items())))
    assert signing.bank_sign("k", params) == signing.bank_sign("k", reordered)


def test_bank_signature_leaves_out_empty_values_and_the_signature_fields() -> None:
    params = {"b": "2", "a": "1", "empty": "", "sign": "x", "sign_type": "SHA256"}
    assert signing.bank_sign_string(params) == "a=1&b=2"
    assert signing.bank_verify("k", params | {"sign": signing.bank_sign("k", params)})
    assert not signing.bank_verify("k", params | {"a": "9", "sign": signing.bank_sign("k", params)})


def test_wallet_signature_covers_every_field_and_the_key() -> None:
    signature = signing.wx_sign("k", "1700000000", "nonce", '{"a":1}')
    assert signing.wx_verify("k", signature, "1700000000", "nonce", '{"a":1}')
    assert not signing.wx_verify("k", signature, "1700000001", "nonce", '{"a":1}')
    assert not signing.wx_verify("other", signature, "1700000000", "nonce", '{"a":1}')


def test_wallet_authorization_header_round_trips() -> None:
    header = signing.wx_authorization("k", "mch", "7", "POST", "/v3/x?y=1", "{}", 1700000000)
    fields = signing.parse_wx_authorization(header)
    assert fields is not None
    assert (fields["mchid"], fields["serial_no"], fields["timestamp"]) == ("mch", "7", "1700000000")
    assert signing.wx_verify("k", fields["signature"], "POST", "/v3/x?y=1", "1700000000", fields["nonce_str"], "{}")
    assert signing.parse_wx_authorization("Bearer abc") is None
