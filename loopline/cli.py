"""`loopline` command line: serve, check-config, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from loopline.attribution.cli import register as register_attribution_commands
from loopline.compliance.cli import register as register_users_commands
from loopline.compliance.governance_cli import register as register_governance_commands
from loopline.config.settings import ConfigError, Settings, load_deployment, load_settings
from loopline.domain.clock import SystemClock
from loopline.journey.commands import register as register_journey_commands
from loopline.media.cli import register as register_media_commands
from loopline.web.auth import Principal, issue_token

# What `serve --demo` gives the deployment file's seeded users when LOOPLINE_DEMO_PASSWORD is
# unset. Documented in the README; only ever used with --demo.
DEMO_PASSWORD = "loopline-demo"


def _print_config_error(exc: ConfigError) -> None:
    print(f"{exc.source}: configuration refused ({len(exc.errors)} error(s)):", file=sys.stderr)
    for line in exc.errors:
        print(f"  {line}", file=sys.stderr)


DEV_TOKEN_FILE = Path("var/dev_twilio_auth_token")


def dev_twilio_token(*, create: bool = False) -> str | None:
    """The development webhook-signing token shared by `serve --dev-token` and simulators."""
    if DEV_TOKEN_FILE.exists():
        return DEV_TOKEN_FILE.read_text().strip()
    if not create:
        return None
    DEV_TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    fd = os.open(DEV_TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def signing_token() -> str | None:
    """What a simulator signs webhooks with: TWILIO_AUTH_TOKEN, else the development token."""
    return os.environ.get("TWILIO_AUTH_TOKEN") or dev_twilio_token()


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        deployment = load_deployment(args.path)
    except ConfigError as exc:
        _print_config_error(exc)
        return 2
    from loopline.policies import PolicyError, PolicySet

    try:
        PolicySet.compile(deployment.policies, deployment.default_route)
    except PolicyError as exc:
        print(f"{args.path}: configuration refused (1 error(s)):\n  {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.path}: ok — {len(deployment.queues)} queues, {len(deployment.agents)} agents, "
        f"{len(deployment.policies)} policies, {len(deployment.tracking_numbers)} tracking numbers"
    )
    return 0


def _load(path: str) -> Settings | None:
    try:
        return load_settings(path)
    except ConfigError as exc:
        _print_config_error(exc)
        return None


def cmd_token(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 2
    if args.agent:
        if args.agent not in {a.id for a in settings.deployment.agents}:
            print(f"no agent {args.agent!r} in {args.config}", file=sys.stderr)
            return 2
        principal = Principal(role="agent", subject=args.agent)
    elif args.supervisor:
        principal = Principal(role="supervisor", subject=args.supervisor)
    else:
        principal = Principal(role="admin", subject=args.admin)
    print(issue_token(settings.token_secret(), principal, SystemClock().now(), args.ttl))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if (args.demo or args.dev_token) and not os.environ.get("TWILIO_AUTH_TOKEN"):
        # Simulated webhooks (the demo, `loopline simulate-call`) sign with a development token
        # kept in var/; a real deployment sets Twilio's own token, which always wins.
        os.environ["TWILIO_AUTH_TOKEN"] = dev_twilio_token(create=True) or ""
        print(
            f"  (development signing token in {DEV_TOKEN_FILE}: set TWILIO_AUTH_TOKEN for Twilio)"
        )
    if args.demo and not os.environ.get("LOOPLINE_DEMO_PASSWORD"):
        # The documented demo default for the config's `users:` (sign in at /signin).
        os.environ["LOOPLINE_DEMO_PASSWORD"] = DEMO_PASSWORD
    if args.public_url:
        os.environ["LOOPLINE_PUBLIC_URL"] = args.public_url
    elif "LOOPLINE_PUBLIC_URL" not in os.environ:
        os.environ["LOOPLINE_PUBLIC_URL"] = f"http://{args.host}:{args.port}"
    settings = _load(args.config)
    if settings is None:
        return 2
    from loopline.policies import PolicyError
    from loopline.web.app import build_app

    overrides = {}
    if args.demo:
        from loopline.web.demo import DemoTelephony

        overrides["call_control"] = DemoTelephony(settings)
    try:
        app = build_app(settings, **overrides)
    except PolicyError as exc:
        print(f"{args.config}: configuration refused:\n  {exc}", file=sys.stderr)
        return 2
    base = settings.public_url
    print(f"Loopline '{settings.deployment.deployment.name}' on http://{args.host}:{args.port}")
    print(f"  state: {settings.state_backend}   records: {settings.records_url}")
    print(f"  Twilio voice webhook:  {base}/twilio/voice   (status: {base}/twilio/status)")
    print(f"  Media stream:          {base.replace('http', 'ws', 1)}/twilio/media")
    print(f"  Agent socket:          ws://{args.host}:{args.port}/ws/agent?token=…")
    print(f"  Supervisor socket:     ws://{args.host}:{args.port}/ws/supervisor?token=…")
    print(f"  Health:                http://{args.host}:{args.port}/healthz")
    print(f"  Agent desktop:         http://{args.host}:{args.port}/agent   (sign in at /signin)")
    print(f"  Supervisor monitor:    http://{args.host}:{args.port}/supervisor")
    if args.demo and os.environ.get("LOOPLINE_DEMO_PASSWORD") == DEMO_PASSWORD:
        print(f"  Demo sign-in: ana, ben, dev (agents), sam (supervisor); password {DEMO_PASSWORD}")
    print(f"  Tokens: loopline token --config {args.config} --agent ana | --supervisor NAME")
    if args.demo:
        print("  Demo: simulated callers and agents are driving traffic (Ctrl-C to stop).")
    from loopline.web.sockets import SERVER_OPTIONS

    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, **SERVER_OPTIONS
    )
    server = uvicorn.Server(config)
    from loopline.gc_tuning import tune_gc

    tune_gc()  # the app is built: what it holds now lives as long as the process
    if args.demo:
        from loopline.web.demo import run_with_demo

        asyncio.run(run_with_demo(server, settings, overrides["call_control"]))
    else:
        server.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a Loopline node")
    serve.add_argument("--config", default="config/loopline.yaml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--public-url", help="the URL Twilio reaches (LOOPLINE_PUBLIC_URL)")
    serve.add_argument("--demo", action="store_true", help="drive simulated calls and agents")
    serve.add_argument(
        "--dev-token",
        action="store_true",
        help="without TWILIO_AUTH_TOKEN, sign with a development token (var/) for simulate-call",
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a deployment file")
    check.add_argument("path")
    check.set_defaults(func=cmd_check_config)

    token = sub.add_parser("token", help="print a bearer token for the sockets and the API")
    token.add_argument("--config", default="config/loopline.yaml")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--agent", metavar="ID")
    who.add_argument("--supervisor", metavar="NAME")
    who.add_argument("--admin", metavar="NAME")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds (default 12 h)")
    token.set_defaults(func=cmd_token)
    register_media_commands(sub)
    register_users_commands(sub)
    register_journey_commands(sub)
    register_attribution_commands(sub)
    register_governance_commands(sub)
    return parser


def quiet_noisy_loggers() -> None:
    """Libraries that would put personal data in log text at their chattier levels."""
    # httpx logs request URLs at INFO; a CRM URL carries the caller's number.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG: numbers, names, text.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_noisy_loggers()
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
