"""How an operator command ends: its result printed as JSON, or its error named. Shared by the CLIs
that act straight on PostgreSQL (merchants, payouts)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import msgspec


def print_result(run: Coroutine[Any, Any, Any]) -> int:
    """Run the command; print its result as indented JSON (0), a bad parameter (2) or a domain error by its code
    (1). Anything without a code is a bug and keeps its traceback."""
    try:
        result = asyncio.run(run)
    except msgspec.ValidationError as exc:
        print(f"payengine: parameter_invalid: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a domain error names its rule; anything else is a bug and keeps its traceback
        code = getattr(exc, "code", None)
        if code is None:
            raise
        print(f"payengine: {code}: {exc}", file=sys.stderr)
        return 1
    print(msgspec.json.format(msgspec.json.encode(result)).decode())
    return 0
