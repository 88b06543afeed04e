"""Hot-account modes: buffered booking, split sub-accounts, and both together.

They are wired to the buffer and split code through their public modules; until that code is in
this checkout a mode reports itself unavailable (and the run says so) rather than faking a number.
"""

from __future__ import annotations

import importlib.util

from bench.load import Sampler
from bench.modes import BenchContext
from bench.workload import WorkloadAccounts
from engine.booking import Booker


def _missing(*modules: str) -> str | None:
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{name} has not landed in this checkout"
    return None


class _NotYet:
    def __init__(self, name: str, needs: tuple[str, ...]) -> None:
        self.name = name
        self.shared = True
        self._needs = needs

    def unavailable(self) -> str | None:
        return _missing(*self._needs) or "wiring pending in bench/modes_hot.py"

    async def prepare(self, ctx: BenchContext, accounts: WorkloadAccounts) -> None:
        raise NotImplementedError(self.unavailable())

    async def start(self, ctx: BenchContext, accounts: WorkloadAccounts) -> Booker:
        raise NotImplementedError(self.unavailable())

    async def stop(self) -> None:
        return None

    def samplers(self) -> dict[str, Sampler]:
        return {}


def buffered_mode() -> _NotYet:
    return _NotYet("buffered", ("buffer.flusher",))


def split_mode(parts: int, buffered: bool) -> _NotYet:
    name = f"buffered+split-{parts}" if buffered else f"split-{parts}"
    return _NotYet(name, ("accounts.split",) + (("buffer.flusher",) if buffered else ()))
