"""Container healthcheck: GET a URL and exit 0 if the process answers HTTP below 500.

Default URL: http://127.0.0.1:$PAYENGINE_PORT/healthz (the API). Pass another URL for roles that
serve something else (a channel simulator answers 404 on /healthz, which still proves it is up).
Standard library only: the slim image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('PAYENGINE_PORT', '8080')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status < 500 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
