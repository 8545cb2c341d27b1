"""What the commands share: the consoles, the options, one-line failures and the exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from autoresearch.cli.flags import paths_from_cwd
from autoresearch.core import config as config_mod
from autoresearch.core.safe_text import one_line

# Exit codes (docs/cli.md's table): a refused start ran nothing; an early stop can be resumed.
EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_STOPPED = 0, 1, 2, 3


def signal_exit(signum: int) -> int:
    """The shell's convention: 130 after Ctrl-C (SIGINT), 143 after SIGTERM, 129 after SIGHUP."""
    return 128 + signum


# No console markup: agent, server and train.py text is printed as it is. Progress and errors go to
# stderr; what a command is asked for (a table, JSON, a train.py) goes to stdout.
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
out = Console(highlight=False, soft_wrap=True, markup=False)


def flag(*names: str, help: str) -> typer.models.OptionInfo:  # noqa: A002 - typer's word
    """An option that takes no value: shown without a type placeholder (`--json`, not
    `--json <bool>`)."""
    return typer.Option(*names, help=help, metavar="")


class _FlagHelp:
    """--help shown as the flag it is (typer gives it a `<bool>` placeholder)."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class Command(_FlagHelp, TyperCommand):
    pass


class Group(_FlagHelp, TyperGroup):
    pass


Workspace = Annotated[Path, typer.Argument(help="The research workspace folder.")]
Json = Annotated[bool, flag("--json", help="Print one JSON object.")]
RunId = Annotated[str | None, typer.Option("--run", help="A run id; default the latest.")]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err.print(Text.assemble(("error: ", "red"), one_line(message)))
    return typer.Exit(code)


def existing(directory: Path) -> Path:
    """The folder a read command was given; a mistyped one is refused as a bad argument."""
    if not directory.is_dir():
        raise fail(f"{directory}: no such folder", EXIT_REFUSED)
    return directory


def load_config(path: Path, flags: dict) -> config_mod.Config:
    """The workspace's settings with the flags given ({dotted key: value or None}) on top."""
    try:
        return config_mod.load(path, paths_from_cwd(flags))
    except config_mod.ConfigError as e:
        raise fail(str(e), EXIT_REFUSED) from None


def reading(path: Path) -> Path:
    """The folder to read runs from: a workspace as it is, a bundle unpacked read-only (and
    said so on stderr)."""
    from autoresearch.views.bundle import BundleError, resolve

    if not path.is_file():  # a bundle is a file; a workspace must be a folder
        existing(path)
    try:
        source = resolve(path)
    except BundleError as e:
        raise fail(str(e)) from None
    if source.note:
        err.print(one_line(source.note))
    return source.workspace
