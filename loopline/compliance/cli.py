"""`loopline users ...`: sign-in accounts and API keys, on the records database of a config.

`register(sub)` adds the commands to the main parser (one line in `loopline.cli.build_parser`).
Passwords are typed at a prompt (twice) or read from standard input with `--password-stdin`;
they never go on the command line, where `ps` and shell history would keep them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from loopline.compliance.access import AccessRecords
from loopline.compliance.users import UserError
from loopline.domain.clock import SystemClock

CLI_ACTOR = "cli"


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="sign-in accounts (agent, supervisor, admin), API keys")
    users_sub = users.add_subparsers(dest="users_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", default="config/loopline.yaml")

    add = users_sub.add_parser("add", help="add an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    add.add_argument("--agent-id", help="agents: the configured agent they take calls as")
    add.add_argument("--name", help="the name shown on the pages")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    common(add)
    add.set_defaults(func=cmd_users_add)

    lst = users_sub.add_parser("list", help="list accounts and API keys")
    common(lst)
    lst.set_defaults(func=cmd_users_list)

    passwd = users_sub.add_parser("passwd", help="set an account's password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    common(passwd)
    passwd.set_defaults(func=cmd_users_passwd)

    for verb, disabled in (("disable", True), ("enable", False)):
        toggle = users_sub.add_parser(verb, help=f"{verb} an account")
        toggle.add_argument("username")
        common(toggle)
        toggle.set_defaults(func=_toggle(disabled))

    key = users_sub.add_parser("api-key", help="make an API key for a server (shown once)")
    key.add_argument("name", help="the server it is for")
    key.add_argument("--role", default="supervisor", choices=["supervisor", "admin"])
    common(key)
    key.set_defaults(func=cmd_users_api_key)

    revoke = users_sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    common(revoke)
    revoke.set_defaults(func=cmd_users_revoke_key)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("the two passwords differ", file=sys.stderr)
        return None
    return first


def run_with_access(
    args: argparse.Namespace, body: Callable[[AccessRecords, Any], Awaitable[int]]
) -> int:
    """Load the deployment, open the records' access side, run `body`, close; an exit code."""
    from loopline.config.settings import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"{exc.source}: configuration refused:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2

    async def run() -> int:
        access = AccessRecords(settings.records_url)
        await access.start()
        try:
            return await body(access, settings)
        except UserError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 2
        finally:
            await access.close()

    return asyncio.run(run())


def cmd_users_add(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 2

    async def body(access: AccessRecords, settings: Any) -> int:
        agents = {a.id for a in settings.deployment.agents}
        if args.role == "agent" and args.agent_id not in agents:
            print(f"refused: no agent {args.agent_id!r} in {args.config}", file=sys.stderr)
            return 2
        now = SystemClock().now()
        user = await access.users.add(
            args.username, args.role, password, now, agent_id=args.agent_id, display_name=args.name
        )
        await access.audit.append(
            CLI_ACTOR, "user.added", now, target=user.username, detail={"role": user.role}
        )
        print(
            f"added {user.role} {user.username}"
            + (f" (agent {user.agent_id})" if user.agent_id else "")
        )
        return 0

    return run_with_access(args, body)


def cmd_users_list(args: argparse.Namespace) -> int:
    async def body(access: AccessRecords, settings: Any) -> int:
        for user in await access.users.all():
            flags = " (disabled)" if user.disabled else ""
            agent = f" agent={user.agent_id}" if user.agent_id else ""
            print(f"{user.username}\t{user.role}{agent}{flags}")
        for key in await access.users.list_api_keys():
            state = "revoked" if key.revoked_at else "active"
            print(f"key {key.key_id}\t{key.role}\t{key.name}\t{state}")
        return 0

    return run_with_access(args, body)


def cmd_users_passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 2

    async def body(access: AccessRecords, settings: Any) -> int:
        now = SystemClock().now()
        await access.users.set_password(args.username, password, now)
        await access.audit.append(CLI_ACTOR, "user.password", now, target=args.username.lower())
        print(f"password set for {args.username.lower()}")
        return 0

    return run_with_access(args, body)


def _toggle(disabled: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def body(access: AccessRecords, settings: Any) -> int:
            now = SystemClock().now()
            await access.users.set_disabled(args.username, disabled, now)
            action = "user.disabled" if disabled else "user.enabled"
            await access.audit.append(CLI_ACTOR, action, now, target=args.username.lower())
            print(f"{args.username.lower()} {'disabled' if disabled else 'enabled'}")
            return 0

        return run_with_access(args, body)

    return command


def cmd_users_api_key(args: argparse.Namespace) -> int:
    async def body(access: AccessRecords, settings: Any) -> int:
        now = SystemClock().now()
        key, text = await access.users.add_api_key(args.name, args.role, now)
        await access.audit.append(
            CLI_ACTOR, "apikey.added", now, target=key.key_id, detail={"role": key.role}
        )
        print(text)
        print(
            f"(key id {key.key_id}; shown once: keep it in the server's secret store)",
            file=sys.stderr,
        )
        return 0

    return run_with_access(args, body)


def cmd_users_revoke_key(args: argparse.Namespace) -> int:
    async def body(access: AccessRecords, settings: Any) -> int:
        now = SystemClock().now()
        if not await access.users.revoke_api_key(args.key_id, now):
            print(f"no active key {args.key_id!r}", file=sys.stderr)
            return 2
        await access.audit.append(CLI_ACTOR, "apikey.revoked", now, target=args.key_id)
        print(f"revoked {args.key_id}")
        return 0

    return run_with_access(args, body)
