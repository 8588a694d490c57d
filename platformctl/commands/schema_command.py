"""``platformctl schema [--write]``: the JSON Schemas of the stack files and the application files,
generated from the program's config loader (see :mod:`platformctl.config_schema`). Without
``--write`` it checks the committed ones: exit 0 when they are what the loader says, 1 (naming the
stale files) when not; with ``--write`` it writes them, exit 0."""

from __future__ import annotations

import argparse
import sys

from environment import SpecError
from platformctl.adapters.config_schema import WRITE_COMMAND, generated
from platformctl.adapters.engine import ROOT

NAME = "schema"
HELP = "check (or --write) the JSON Schemas of the stack and application files, generated from the config loader"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", action="store_true", help="write schema/*.schema.json instead of checking them")


def run(args: argparse.Namespace) -> int:
    try:
        texts = generated()
    except SpecError as error:
        print(f"error: an example the schemas are generated from is refused: {error}", file=sys.stderr)
        return 2
    stale = [path for path, text in texts.items() if not path.is_file() or path.read_text() != text]
    if args.write:
        for path in stale:
            path.write_text(texts[path])
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    for path in stale:
        print(f"error: {path.relative_to(ROOT)} is not what the config loader says: run `{WRITE_COMMAND}`",
              file=sys.stderr)
    return 1 if stale else 0
