"""Channel name → adapter class, found by scanning `channels.adapters`.

Adding a channel is adding one package there whose `__init__` exposes `ADAPTER`; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from functools import cache

import aiohttp

import channels.adapters
from channels.protocol import Channel, ChannelConfig

ChannelFactory = Callable[[aiohttp.ClientSession, ChannelConfig], Channel]


class UnknownChannel(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown channel {name!r}; known: {known}")
        self.name = name
        self.known = known


@cache
def adapter_classes() -> dict[str, ChannelFactory]:
    """Every adapter package's ADAPTER under the package's name (`wxsim`, `banksim`, ...)."""
    found: dict[str, ChannelFactory] = {}
    for module_info in pkgutil.iter_modules(channels.adapters.__path__):
        if not module_info.ispkg:  # a helper shared by the channels (transport, statement_lines)
            continue
        module = importlib.import_module(f"channels.adapters.{module_info.name}")
        factory = getattr(module, "ADAPTER", None)
        if factory is not None:
            found[module_info.name] = factory
    return found


def build_channel(session: aiohttp.ClientSession, config: ChannelConfig, kind: str | None = None) -> Channel:
    """An adapter for `config`; `kind` picks the module when the configured name differs
    (e.g. two accounts at the same wallet, `wxsim-a` and `wxsim-b`)."""
    classes = adapter_classes()
    module_name = kind or config.name
    factory = classes.get(module_name)
    if factory is None:
        raise UnknownChannel(module_name, sorted(classes))
    return factory(session, config)
