"""The README and docs/ stand on their own: every link they make resolves inside the project, and the API
guide's signing recipe computes the signature the server checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.merchants.signing import sign

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves_inside_the_project(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{doc.name} links outside the project: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"
    assert "../shared" not in doc.read_text()


def test_readme_sends_the_reader_to_the_api_guide_and_the_guide_to_the_contract() -> None:
    assert "(docs/API.md)" in (REPO / "README.md").read_text()
    guide = (REPO / "docs" / "API.md").read_text()
    for topic in ("## Signing every request", "## Idempotency", "## Errors", "## The main endpoints",
                  "GET /openapi.json"):
        assert topic in guide


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the recipe uses openssl")
def test_the_guides_signing_recipe_matches_the_server() -> None:
    guide = (REPO / "docs" / "API.md").read_text()
    recipe = next(line for line in guide.splitlines() if line.startswith("SIG=$("))
    body = '{"merchant_order_no":"order-1","amount":1999,"currency":"CNY"}'
    env = {**os.environ, "TS": "1765000000", "SECRET": "sk_test", "BODY": body}
    done = subprocess.run(["sh", "-c", f'{recipe}\nprintf %s "$SIG"'], env=env, capture_output=True, text=True,
                          check=True, timeout=30)
    assert done.stdout == sign("sk_test", "1765000000", "POST", "/v1/payments", body.encode())
