"""``python -m kernelflow.concurrency``: manage limits from a shell, as ``prefect gcl`` does.

    python -m kernelflow.concurrency create api --limit 5 --slot-decay-per-second 1
    python -m kernelflow.concurrency update api --limit 10
    python -m kernelflow.concurrency disable api     (enable api)
    python -m kernelflow.concurrency inspect api
    python -m kernelflow.concurrency ls
    python -m kernelflow.concurrency delete api

The limits are those of ``$KERNELFLOW_HOME`` (default ``~/.kernelflow``).
"""

from __future__ import annotations

import argparse
import sys

from kernelflow.concurrency import (
    ConcurrencyLimit,
    delete_limit,
    read_limit,
    read_limits,
    set_limit,
)
from kernelflow.exceptions import InvalidOptionError, ObjectNotFound


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "ls":
            for limit in read_limits():
                print(_line(limit))
        elif args.command == "inspect":
            print(_line(read_limit(args.name)))
        elif args.command == "create":
            print(_line(set_limit(args.name, args.limit, **_options(args, None))))
        elif args.command == "update":
            current = read_limit(args.name)
            limit = args.limit if args.limit is not None else current.limit
            print(_line(set_limit(args.name, limit, **_options(args, current))))
        elif args.command in ("enable", "disable"):
            current = read_limit(args.name)
            print(
                _line(
                    set_limit(
                        args.name,
                        current.limit,
                        slot_decay_per_second=current.slot_decay_per_second,
                        active=args.command == "enable",
                    )
                )
            )
        elif args.command == "delete":
            delete_limit(args.name)
            print(f"Deleted concurrency limit {args.name!r}.")
    except (ObjectNotFound, InvalidOptionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _options(args: argparse.Namespace, current: ConcurrencyLimit | None) -> dict:
    decay = args.slot_decay_per_second
    if decay is None:
        decay = current.slot_decay_per_second if current else 0.0
    active = current.active if current else True
    if args.disable:
        active = False
    elif getattr(args, "enable", False):
        active = True
    return {"slot_decay_per_second": decay, "active": active}


def _line(limit: ConcurrencyLimit) -> str:
    state = "active" if limit.active else "inactive"
    decay = (
        f", {limit.slot_decay_per_second:g} slots/s decay" if limit.slot_decay_per_second else ""
    )
    return f"{limit.name}: {limit.active_slots:g}/{limit.limit} slots in use{decay} ({state})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kernelflow.concurrency",
        description="Manage kernelflow's concurrency and rate limits (as `prefect gcl`).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ls", help="list the limits")
    for name in ("inspect", "delete", "enable", "disable"):
        commands.add_parser(name, help=f"{name} a limit").add_argument("name")
    for name in ("create", "update"):
        command = commands.add_parser(name, help=f"{name} a limit")
        command.add_argument("name")
        command.add_argument("--limit", type=int, required=name == "create")
        command.add_argument("--slot-decay-per-second", type=float)
        command.add_argument("--disable", action="store_true")
        if name == "update":
            command.add_argument("--enable", action="store_true")
    return parser


if __name__ == "__main__":
    sys.exit(main())
