"""Run every registered benchmark; each writes bench/results/<name>.json.

`make bench` runs this under scripts/with-redis.sh, so the Redis figures have a server. Each
bench runs as its own process (`python -m <module> <args>`): one's memory, garbage and event
loop never colour another's figures, and one that fails does not stop the rest.

To add a bench, append one line to BENCHES. Run a few: `python -m bench.run_all routing webhook`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Bench:
    name: str  # its results file: bench/results/<name>.json
    module: str  # run as `python -m <module> <args>`
    args: tuple[str, ...] = ()


BENCHES: list[Bench] = [
    Bench("cel_engines", "bench.bench_cel"),
    Bench("policies_decide", "bench.bench_policies"),
    Bench("routing", "bench.bench_routing"),
    Bench("webhook", "bench.bench_webhook"),
    Bench("attribution_scoring", "bench.bench_attribution_scoring"),
    Bench("attribution_outbox", "bench.bench_attribution_outbox"),
    Bench("attribution_kpis", "bench.bench_attribution_kpis"),
    Bench("fanout", "bench.bench_fanout"),
    Bench("fanout_redis", "bench.bench_fanout", ("--redis",)),
    Bench("supervisor_page", "bench.bench_supervisor_page"),
    Bench("media_ingest", "bench.bench_media_ingest"),
    Bench("media_pipeline_tiny.en", "bench.bench_media_pipeline", ("--model", "tiny.en")),
    Bench("media_pipeline_base", "bench.bench_media_pipeline", ("--model", "base")),
    Bench("media_wer", "bench.bench_media_wer"),
    Bench("media_sentiment", "bench.bench_media_sentiment"),
    Bench("media_pipecat", "bench.bench_media_pipecat"),  # needs .venv-pipecat, else skips
    Bench("media_node_tiny.en", "bench.bench_media_node", ("--model", "tiny.en")),
    Bench(
        "media_node_base", "bench.bench_media_node", ("--model", "base", "--calls", "4", "8", "12")
    ),
]


def run(bench: Bench) -> tuple[int, float]:
    started = time.monotonic()
    print(f"== {bench.name}: python -m {' '.join((bench.module, *bench.args))}", flush=True)
    done = subprocess.run([sys.executable, "-m", bench.module, *bench.args], check=False)
    return done.returncode, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benches to run (default: all)")
    args = parser.parse_args(argv)
    known = {b.name: b for b in BENCHES}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown bench(es) {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in args.names] if args.names else BENCHES
    failed: list[str] = []
    for bench in chosen:
        code, took = run(bench)
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"== {bench.name}: {status} in {took:.0f} s -> {RESULTS / (bench.name + '.json')}")
        if code != 0:
            failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
