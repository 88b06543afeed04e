"""The two signature schemes the channels use, shared by simulators and adapters.

Keeping the signer and the verifier in one function pair means the simulator and the
adapter cannot drift apart; what differs between channels is which scheme they use.

- wallet scheme (wxsim, after WeChat Pay v3 with HMAC instead of RSA): base64 of
  HMAC-SHA256 over newline-terminated fields;
- bank scheme (banksim, after Alipay/UnionPay "MD5/SHA" keys): SHA-256 hex over the
  sorted non-empty `k=v` pairs joined with `&`, followed by `&key=<key>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

WX_AUTH_SCHEME = "WXSIM-HMAC-SHA256"
WX_HEADER_TIMESTAMP = "Wechatpay-Timestamp"
WX_HEADER_NONCE = "Wechatpay-Nonce"
WX_HEADER_SIGNATURE = "Wechatpay-Signature"
WX_HEADER_SERIAL = "Wechatpay-Serial"

# Fields of the bank scheme that are never part of the signed string.
BANK_UNSIGNED_FIELDS = frozenset({"sign", "sign_type"})

_AUTH_FIELD_RE = re.compile(r'(\w+)="([^"]*)"')


def new_nonce() -> str:
    return secrets.token_hex(16)


def wx_sign(key: str, *fields: str) -> str:
    """Sign fields as `f1\\nf2\\n...\\n` (each field newline-terminated, as WeChat does)."""
    message = "".join(f"{field}\n" for field in fields).encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def wx_verify(key: str, signature: str, *fields: str) -> bool:
    return hmac.compare_digest(wx_sign(key, *fields), signature)


def wx_authorization(
    key: str, merchant_id: str, serial: str, method: str, path: str, body: str, timestamp_s: int
) -> str:
    """The Authorization header a merchant puts on every request to the wallet channel."""
    nonce = new_nonce()
    signature = wx_sign(key, method, path, str(timestamp_s), nonce, body)
    return (
        f'{WX_AUTH_SCHEME} mchid="{merchant_id}",nonce_str="{nonce}",'
        f'timestamp="{timestamp_s}",serial_no="{serial}",signature="{signature}"'
    )


def parse_wx_authorization(header: str) -> dict[str, str] | None:
    """Split the Authorization header into its fields; None when it is not our scheme."""
    scheme, _, rest = header.partition(" ")
    if scheme != WX_AUTH_SCHEME:
        return None
    return dict(_AUTH_FIELD_RE.findall(rest))


def wx_signed_headers(key: str, serial: str, body: str, timestamp_s: int) -> dict[str, str]:
    """Headers the wallet channel puts on its responses and notifies."""
    nonce = new_nonce()
    return {
        WX_HEADER_TIMESTAMP: str(timestamp_s),
        WX_HEADER_NONCE: nonce,
        WX_HEADER_SIGNATURE: wx_sign(key, str(timestamp_s), nonce, body),
        WX_HEADER_SERIAL: serial,
    }


def bank_sign_string(params: Mapping[str, str]) -> str:
    """The canonical string: sorted keys, empty values and the signature fields left out."""
    return "&".join(
        f"{name}={params[name]}" for name in sorted(params) if name not in BANK_UNSIGNED_FIELDS and params[name] != ""
    )


def bank_sign(key: str, params: Mapping[str, str]) -> str:
    return hashlib.sha256(f"{bank_sign_string(params)}&key={key}".encode()).hexdigest()


def bank_verify(key: str, params: Mapping[str, str]) -> bool:
    return hmac.compare_digest(bank_sign(key, params), params.get("sign", ""))
