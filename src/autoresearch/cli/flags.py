"""The options of the settings that have a flag, built from the flags declared on the config
model's fields (core/flags.py): a command names the settings it takes and gets their values back
as one dict of dotted keys ({"loop.iterations": 5, "budget_secs": None, ...}; None: not given).

The options are typer's own, put in the command's signature in place of its `flags` parameter:
typer builds the command from that signature as from any other, so --help, the types' errors and
the docs' CLI reference read the same as for the options written out by hand."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from autoresearch.core import config as config_mod
from autoresearch.core.flags import Flagged

FLAGS_PARAMETER = "flags"  # the parameter of a command that the options replace
BY_KEY = config_mod.FLAGGED


def default(dotted: str) -> str:
    """ " [default: 300]": a setting's default (a new workspace's autoresearch.toml may set
    another; a flag left out takes the file's), for an option's help."""
    value = BY_KEY[dotted].field.default
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f" [default: {shown}]"


def help_text(item: Flagged, about: str | None = None) -> str:
    """The option's help: the flag's (or the command's own words), and the default where one
    is worth showing."""
    value = item.field.default
    shown = item.flag.show_default and value is not None and not isinstance(value, bool)
    return (about or item.flag.help) + (default(item.key) if shown else "")


def value_type(annotation: Any) -> type:
    """What the option parses: `int | None` an int, `Literal["full", "truncated"]` a str (the
    config's validation names the choices)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    return annotation


def option(item: Flagged, about: str | None = None) -> Any:
    """The annotation of the parameter that takes the setting's flag."""
    kind = value_type(item.field.annotation)
    if kind is bool:  # --async/--no-async, shown without a type placeholder
        names = f"{item.flag.name}/{item.flag.off}"
        info = typer.Option(names, help=help_text(item, about), metavar="")
    else:
        info = typer.Option(item.flag.name, help=help_text(item, about))
    return Annotated[kind | None, info]


def config_flags(*keys: str, helps: dict[str, str] | None = None) -> Callable:
    """The command with the flags of these settings (every setting that has one when none are
    named) in place of its `flags` parameter; `helps` gives a flag other words in this command."""
    chosen = [BY_KEY[key] for key in keys] if keys else list(BY_KEY.values())

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        names = {item.key.replace(".", "_"): item.key for item in chosen}
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.name != FLAGS_PARAMETER:
                parameters.append(parameter)
                continue
            for name, item in zip(names, chosen, strict=True):
                annotation = option(item, (helps or {}).get(item.key))
                parameters.append(parameter.replace(name=name, default=None, annotation=annotation))

        @functools.wraps(command)
        def taking_flags(**given: Any) -> Any:
            flags = {key: given.pop(name) for name, key in names.items()}
            return command(**given, **{FLAGS_PARAMETER: flags})

        taking_flags.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        taking_flags.__annotations__ = {p.name: p.annotation for p in parameters}
        return taking_flags

    return decorate


def listed(keys: typing.Iterable[str]) -> str:
    """ "--iterations, --max-cost and --until": the flags of these settings."""
    names = [config_mod.FLAGS[key] for key in keys]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def paths_from_cwd(flags: dict) -> dict:
    """Paths given as flags are relative to the current directory, as a user expects (paths in
    autoresearch.toml stay relative to the workspace); a program (--python) without a "/" is
    looked up on PATH."""
    fixed = dict(flags)
    for key, value in flags.items():
        kind = BY_KEY[key].flag.path if key in BY_KEY else ""
        if value and (kind == "path" or (kind == "program" and "/" in value)):
            fixed[key] = str(Path(value).expanduser().absolute())
    return fixed
