"""API tokens CLI: ``python -m api.cli.tokens create --name NAME [--scope read|submit|admin] [--expires-in 30d]``
prints a new token once (only its sha256 is kept).

Scopes: read (every GET), submit (also create/cancel/resume/retry jobs, datasets, experiments, predict), admin
(also token listing); each includes the ones before it. ``list`` shows name, scope, expiry and state (active,
revoked, expired), never a token; ``revoke --name NAME`` (or ``--id ID``) revokes.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone

from persistence import repo
from persistence.base import utcnow
from persistence.migrate import upgrade
from persistence.models import TOKEN_SCOPES
from persistence.session import make_engine, make_sessionmaker, transaction
from persistence.settings import get_settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w' -> a positive timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text.lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number and a unit s, m, h, d or w (e.g. 30d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_when(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give an ISO date or time, e.g. 2027-01-31 or "
                                         "2027-01-31T18:00:00+01:00") from None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _fmt(t: datetime | None, none: str = "-") -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC") if t is not None else none


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.cli.tokens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.add_argument("--scope", choices=TOKEN_SCOPES, default="submit",
                        help="read < submit < admin (default submit: what the dashboard needs to run jobs)")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=parse_duration, metavar="DURATION", help="e.g. 30d, 12h, 90m")
    expiry.add_argument("--expires-at", type=parse_when, metavar="WHEN", help="ISO date/time (UTC if no zone)")
    sub.add_parser("list", help="name, scope, expiry and state of every token (never the tokens)")
    revoke = sub.add_parser("revoke", help="revoke tokens by name or id")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="every token with this name")
    which.add_argument("--id", type=int, help="the token with this id (from list)")
    args = parser.parse_args(argv)

    if args.command == "create":
        expires_at = utcnow() + args.expires_in if args.expires_in else args.expires_at
        if expires_at is not None and expires_at <= utcnow():
            parser.error(f"--expires-at {expires_at:%Y-%m-%d %H:%M} UTC is in the past")

    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as session:
        if args.command == "create":
            row, raw = repo.create_token(session, name=args.name, scope=args.scope, expires_at=expires_at)
            sys.stdout.write(raw + "\n")
            sys.stderr.write(f"token {row.id} {args.name!r}: scope {args.scope}, expires {_fmt(expires_at, 'never')}. "
                             "Store it now: it is not shown again. Send it as 'Authorization: Bearer <token>'.\n")
        elif args.command == "list":
            now = utcnow()
            sys.stdout.write("id\tname\tscope\texpires\tstate\tcreated\tlast used\n")
            for t in repo.list_tokens(session):
                sys.stdout.write(f"{t.id}\t{t.name}\t{t.scope}\t{_fmt(t.expires_at, 'never')}\t"
                                 f"{repo.token_state(t, now)}\t{_fmt(t.created_at)}\t{_fmt(t.last_used_at)}\n")
        else:
            n = repo.revoke_token(session, name=args.name, token_id=args.id)
            what = f"named {args.name!r}" if args.name is not None else f"with id {args.id}"
            sys.stdout.write(f"revoked {n} token(s) {what}\n")
            if n == 0:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
