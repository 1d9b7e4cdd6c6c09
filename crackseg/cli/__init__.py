"""The `crackseg` command: one sub-command per module, each exposing `register(subparsers)`.

Every sub-command module adds its parser and sets `func`; heavy imports live inside `func`
so that `crackseg --help` stays fast.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys

from crackseg.errors import CrackSegError

# (module under crackseg.cli, in the order shown by --help)
COMMANDS = ["train", "evaluate", "predict", "models", "data", "measure", "explain", "demo", "serve",
            "export"]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crackseg",
        description="Find cracks in photos of concrete, asphalt and masonry, pixel by pixel.",
    )
    # no prefix matching of flags: `--epoch 3` is an error, not a silent `--epochs 3`
    strict = functools.partial(argparse.ArgumentParser, allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=strict)
    for name in COMMANDS:
        importlib.import_module(f"crackseg.cli.{name}").register(sub)
    return parser


def user_message(err: CrackSegError) -> str:
    """The error's own one line, also when torch re-raised it from a DataLoader worker as
    "Caught CrackSegError in DataLoader worker process N. Original Traceback ...": the last line
    of that traceback is `crackseg.errors.CrackSegError: <message>`."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    prefix = f"{type(err).__module__}.{type(err).__qualname__}: "
    return last.removeprefix(prefix).removeprefix(f"{type(err).__qualname__}: ")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CrackSegError as err:
        print(f"crackseg {args.command}: error: {user_message(err)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `crackseg measure ... --json | head`
        sys.stderr.close()
        return 0
    except OSError as err:  # the machine said no mid-run (a full disk, a vanished folder)
        where = f"{err.filename}: " if err.filename else ""
        print(f"crackseg {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # a message says where the command stood (train: resume)
        where = f" {err}" if str(err) else ""
        print(f"crackseg {args.command}: interrupted{where}", file=sys.stderr)
        return 130
