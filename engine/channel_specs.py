"""Which channels this deployment talks to, parsed from one settings string.

`PAYENGINE_CHANNELS` holds entries separated by `;`, each `name=kind,base_url,merchant_id,key` with an
optional fifth field `cost_bps` (routing's cost factor). `kind` names the adapter module
(`wxsim`, `banksim`), so two accounts at one wallet are `wx-a=wxsim,...;wx-b=wxsim,...`. Example:

    wxsim=wxsim,http://127.0.0.1:9101,sim-merchant,sim-secret-key-0123456789abcdef

Pure parsing: no imports of adapters here, because settings are read before anything else starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
COST_BPS_DEFAULT = 60


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    kind: str
    base_url: str
    merchant_id: str
    key: str
    cost_bps: int = COST_BPS_DEFAULT

    def __repr__(self) -> str:  # the key is a secret: keep it out of logs and `payengine settings`
        return f"ChannelSpec({self.name}={self.kind} at {self.base_url})"


def parse_channel_specs(raw: str) -> tuple[ChannelSpec, ...]:
    """Parse the spec string; ValueError naming the bad entry. An empty string means no channels."""
    specs: list[ChannelSpec] = []
    for number, entry in enumerate((e.strip() for e in raw.split(";")), start=1):
        if not entry:
            continue
        name, sep, rest = entry.partition("=")
        fields = [f.strip() for f in rest.split(",")]
        if not sep or len(fields) not in (4, 5) or not all(fields):
            raise ValueError(f"channel entry {number}: expected name=kind,base_url,merchant_id,key[,cost_bps]")
        name = name.strip()
        if not _NAME.match(name) or not _NAME.match(fields[0]):
            raise ValueError(f"channel entry {number}: name and kind must match {_NAME.pattern}")
        if not fields[1].startswith(("http://", "https://")):
            raise ValueError(f"channel entry {number}: base_url must start with http:// or https://")
        cost_bps = COST_BPS_DEFAULT
        if len(fields) == 5:
            if not fields[4].isdigit() or int(fields[4]) > 10_000:
                raise ValueError(f"channel entry {number}: cost_bps must be an integer 0..10000")
            cost_bps = int(fields[4])
        specs.append(ChannelSpec(name, fields[0], fields[1], fields[2], fields[3], cost_bps))
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ValueError(f"channel names must be unique, got {names}")
    return tuple(specs)
