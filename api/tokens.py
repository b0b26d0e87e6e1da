"""API tokens CLI: ``python -m api.tokens create --name NAME`` prints a new token once (only its sha256 is kept).

Also ``list`` and ``revoke --name NAME``.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from persistence import repo
from persistence.migrate import upgrade
from persistence.models import ApiToken
from persistence.session import make_engine, make_sessionmaker, transaction
from persistence.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.tokens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what uses it")
    sub.add_parser("list", help="names and dates (never the tokens)")
    revoke = sub.add_parser("revoke", help="revoke every token with this name")
    revoke.add_argument("--name", required=True)
    args = parser.parse_args(argv)

    settings = get_settings()
    settings.ensure_dirs()
    upgrade(settings.database_url)
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with transaction(sessions) as session:
        if args.command == "create":
            _, raw = repo.create_token(session, name=args.name)
            sys.stdout.write(raw + "\n")
            sys.stderr.write("store it now: it is not shown again. Send it as 'Authorization: Bearer <token>'.\n")
        elif args.command == "list":
            for t in session.scalars(select(ApiToken).order_by(ApiToken.id)):
                state = "revoked" if t.revoked else "active"
                sys.stdout.write(f"{t.id}\t{t.name}\t{state}\tcreated {t.created_at:%Y-%m-%d %H:%M}\t"
                                 f"last used {t.last_used_at or '-'}\n")
        else:
            n = repo.revoke_token(session, name=args.name)
            sys.stdout.write(f"revoked {n} token(s) named {args.name!r}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
