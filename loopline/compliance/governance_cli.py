"""`loopline retention run [--dry-run]` and `loopline audit verify`, on a config's records.

`register(sub)` adds both to the main parser (one line in `loopline.cli.build_parser`). Both
print counts and sequence numbers only, never a record's contents.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loopline.compliance.access import AccessRecords
from loopline.compliance.cli import run_with_access
from loopline.compliance.retention import KINDS, RetentionSweeper
from loopline.domain.clock import SystemClock

CLI_ACTOR = "cli"


def register(sub: Any) -> None:
    retention = sub.add_parser("retention", help="delete data past its retention period")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="sweep now (in batches; counts are printed)")
    run.add_argument("--config", default="config/loopline.yaml")
    run.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.set_defaults(func=cmd_retention_run)

    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check every entry's hash and chain")
    verify.add_argument("--config", default="config/loopline.yaml")
    verify.set_defaults(func=cmd_audit_verify)


def cmd_retention_run(args: argparse.Namespace) -> int:
    async def body(access: AccessRecords, settings: Any) -> int:
        config = settings.deployment.compliance.retention
        now = SystemClock().now()
        report = await RetentionSweeper(access.engine, config).run(now, dry_run=args.dry_run)
        if not args.dry_run:
            await access.audit.append(
                CLI_ACTOR, "retention.run", now, detail={"counts": report.counts}
            )
        if args.json:
            print(json.dumps(report.as_dict(), indent=2))
            return 0
        verb = "would delete" if args.dry_run else "deleted"
        for kind in KINDS:
            cutoff = report.cutoffs.get(kind)
            when = f"before {cutoff:%Y-%m-%d %H:%M}" if cutoff else "kept (no period)"
            print(f"{kind:<12} {verb} {report.counts.get(kind, 0):>8}   {when}")
            if kind in report.notes:
                print(f"{'':<12} ({report.notes[kind]})")
        print("(live journey sessions are swept by the running node)")
        return 0

    return run_with_access(args, body)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    async def body(access: AccessRecords, settings: Any) -> int:
        report = await access.audit.verify()
        anchor = await access.audit.anchor()
        start = f" from the retention anchor at entry {anchor[0]}" if anchor else ""
        if report.ok:
            print(f"audit log ok: {report.checked} entries verified{start}")
            return 0
        print(
            f"audit log BROKEN at entry {report.bad_seq}: {report.problem} "
            f"({report.checked} entries verified before it{start})",
            file=sys.stderr,
        )
        return 1

    return run_with_access(args, body)
