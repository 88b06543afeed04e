"""``python -m bench.ab A B``: the per-payment bench (bench/per_payment.py) of two revisions, alternating.

Each side is a git revision (exported with ``git archive`` into a temp dir), a directory holding a copy of
the tree (so the working tree can change while a comparison runs) or ``.`` (this working tree),
and gets servers of its own (fresh embedded PostgreSQL and Redis, migrated by that side's migrations, so
a schema change is measured with its own schema). After one unrecorded warm-up run per side, the runs
alternate A B B A A B ... on the same machine, so drift and busy neighbours hit both sides alike; the JSON
line at the end has every run, the medians and the ratios B/A (payments/s, PostgreSQL / Redis / engine
CPU per payment) and the load average before and after. Extra arguments after ``--`` go to every run
of bench.per_payment, or of ``--module`` (another bench taking --database-url and --redis-url, e.g.
``--module bench -- hot-merchant --modes batched``: then every numeric figure of its JSON line is compared).

    python -m bench.ab HEAD~1 . --runs 3 -- --duration 10 --concurrency 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import embedded

REPO = Path(__file__).resolve().parent.parent
COMPARED = ("payments_per_s", "pg_cpu_us_per_payment", "redis_cpu_us_per_payment", "bench_cpu_us_per_payment",
            "p50_ms", "p99_ms")


@contextlib.contextmanager
def source_tree(rev: str) -> Iterator[Path]:
    """``.``: this working tree; a directory: that tree; anything else: that revision exported into a temp
    dir (removed after)."""
    if rev == ".":
        yield REPO
        return
    if Path(rev).is_dir():
        yield Path(rev).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="pe-ab-") as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def run_once(tree: Path, servers: embedded.TemporaryServers, module: str, extra: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-m", module, *extra, "--database-url", servers.database_url,
                           "--redis-url", servers.redis_url], cwd=tree, env=env, capture_output=True,
                          text=True, check=False)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"python -m {module} in {tree} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float) and not isinstance(r[key], bool)]
    return round(statistics.median(values), 1) if values else None


def _compared(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """bench.per_payment's figures, or every numeric figure both sides' headlines have (another bench)."""
    numeric = [{k for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
               for rs in runs.values() for r in rs]
    common = set.intersection(*numeric) if numeric else set()
    return [k for k in COMPARED if k in common] + sorted(common - set(COMPARED) - {"concurrency", "duration_s"})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the 'before' side: a git revision or . (this working tree)")
    p.add_argument("b", help="the 'after' side: a git revision or .")
    p.add_argument("--runs", type=int, default=3, help="runs per side (default 3), alternating")
    p.add_argument("--warm-runs", type=int, default=1,
                   help="unrecorded runs per side first (default 1): a fresh server's first run is slower")
    p.add_argument("--label", default="", help="a name for the comparison, copied into the JSON")
    p.add_argument("--module", default="bench.per_payment",
                   help="what each run runs: python -m MODULE [args after --] --database-url .. --redis-url ..;"
                        " e.g. --module bench -- hot-merchant --modes batched (default bench.per_payment)")
    args = p.parse_args(own)
    load_start = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    with source_tree(args.a) as tree_a, source_tree(args.b) as tree_b, \
            embedded.temporary_servers(prefix="pe-ab-a-") as servers_a, \
            embedded.temporary_servers(prefix="pe-ab-b-") as servers_b:
        sides = {"a": (tree_a, servers_a), "b": (tree_b, servers_b)}
        for side in ("a", "b"):
            for _ in range(args.warm_runs):
                run_once(*sides[side], args.module, extra)
        for i in range(args.runs):
            # A B, B A, A B, ...: neither side always goes first.
            for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
                tree, servers = sides[side]
                result = run_once(tree, servers, args.module, extra)
                runs[side].append(result)
                print(f"  run {i + 1} {side} ({getattr(args, side)}): "
                      + " ".join(f"{k}={v}" for k, v in result.items() if k in COMPARED or k.endswith("_per_s"))
                      + f" load={[round(x, 2) for x in os.getloadavg()]}",
                      file=sys.stderr, flush=True)
    keys = _compared(runs)
    medians = {side: {k: _median(rs, k) for k in keys} for side, rs in runs.items()}
    ratios = {f"{k}_b_over_a": round(b / a, 3) if (a := medians["a"][k]) and (b := medians["b"][k]) else None
              for k in keys}
    money = "ok" if all(r.get("money_checks") == "ok" for rs in runs.values() for r in rs) else "FAILED"
    print(json.dumps({"scenario": "ab", "label": args.label, "a": args.a, "b": args.b, "runs_per_side": args.runs,
                      "module": args.module, "args": extra, "median_a": medians["a"], "median_b": medians["b"],
                      **ratios,
                      "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                      "runs": runs, "money_checks": money}, separators=(",", ":")))
    return 0 if money == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
