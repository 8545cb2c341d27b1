"""A setting's command-line flag, declared once on the setting's field in config.py
(`Annotated[int, Flag("--iterations", ...)]`) and read from there by everything else: the
commands' options and their help (cli/flags.py), the errors that name a flag, the settings a
resumed run may change, the command line a refusal suggests and the docs' reference pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Flag:
    """The flag of the setting whose field carries it."""

    name: str  # "--budget"; a boolean setting gets "--no-..." beside it
    help: str  # the option's help; the docs' too where the setting has no comment of its own
    # A resumed run may change it. Every other setting is frozen when a run starts, so that its
    # iterations stay comparable and `autoresearch run WS` goes on exactly as it started.
    mutable: bool = False
    # " [default: 300]" after the help (never for a setting unset or off by default); --python's
    # is not shown: a new workspace's autoresearch.toml names the interpreter that made it
    show_default: bool = True
    # "path": a value given as a flag is relative to the current directory, as a user expects
    # (paths in autoresearch.toml stay relative to the workspace); "program": likewise, when it
    # has a "/" (without one it names a program on PATH)
    path: Literal["", "path", "program"] = ""

    @property
    def off(self) -> str:
        """The flag that turns a boolean setting off: --no-async."""
        return "--no-" + self.name.removeprefix("--")

    def typed(self, value: Any) -> list[str]:
        """The words that set the value, as a user types them: ["--budget", "300"]; a boolean
        setting's flag alone (["--async"], ["--no-async"])."""
        if isinstance(value, bool):
            return [self.name if value else self.off]
        return [self.name, f"{value:g}" if isinstance(value, float) else str(value)]


@dataclass(frozen=True)
class Flagged:
    """A setting that has a flag."""

    key: str  # dotted: "loop.iterations"
    flag: Flag
    field: FieldInfo


def flag_of(field: FieldInfo) -> Flag | None:
    return next((item for item in field.metadata if isinstance(item, Flag)), None)


def flagged(model: type[BaseModel], prefix: str = "") -> list[Flagged]:
    """Every setting of the model (sections included) that has a flag, in the model's order."""
    found = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += flagged(annotation, f"{prefix}{name}.")
        elif (flag := flag_of(field)) is not None:
            found.append(Flagged(f"{prefix}{name}", flag, field))
    return found
