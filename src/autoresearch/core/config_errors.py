"""What is wrong with a configuration, in one line: where (the file and its line, or the flag),
what, and for an unknown key the near miss and the keys its section has."""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel, ValidationError


def did_you_mean(word: str, choices) -> str:
    """ " (did you mean 'budget_secs'?)" for a near miss, else ""."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def line_of(text: str, loc: tuple) -> str:
    """ ", line N" of the key at loc (("loop", "iterations") is `iterations` under `[loop]`)."""
    section: tuple = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[+\s*([^\]]+?)\s*\]", line)
        if header:
            section = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
            continue
        for depth in range(len(loc), 0, -1):
            if section != loc[: depth - 1]:
                continue
            if re.match(rf"\s*\"?{re.escape(str(loc[depth - 1]))}\"?\s*[=.]", line):
                return f", line {number}"
    return ""


def _section_model(root: type[BaseModel], path: tuple) -> type[BaseModel]:
    model = root
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            break
    return model


def explain(err: ValidationError, where: str, root: type[BaseModel]) -> str:
    """The first of err's problems in one line, after where (the file and line, or the flag);
    an unknown key gets the near miss and the valid keys of its section of root."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    dotted = ".".join(str(p) for p in loc)
    if first["type"] == "extra_forbidden":
        valid = _section_model(root, loc[:-1]).model_fields
        guess = did_you_mean(str(loc[-1]), valid)
        return f"{where}: unknown key '{dotted}'{guess}; valid keys here: {', '.join(valid)}"
    message = first["msg"].removeprefix("Value error, ")  # our own validators' words
    return f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}"
