"""The `crackseg` command: one sub-command per module, each exposing `register(subparsers)`.

Every sub-command module adds its parser and sets `func`; heavy imports live inside `func`
so that `crackseg --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from crackseg.errors import CrackSegError

# (module under crackseg.cli, in the order shown by --help)
COMMANDS = ["train", "evaluate", "predict", "models", "data", "measure", "explain", "demo", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crackseg",
        description="Find cracks in photos of concrete, asphalt and masonry, pixel by pixel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"crackseg.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CrackSegError as err:
        print(f"crackseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `crackseg measure ... --json | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"crackseg {args.command}: interrupted", file=sys.stderr)
        return 130
