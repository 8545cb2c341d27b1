"""The reference tables of the docs, generated from the code so that no page restates it.

- `<!-- config-table -->` in a page becomes the table of every autoresearch.toml key: walked from
  the pydantic models of autoresearch's config module (type, bounds, default, flag, and the
  description: the field's `description`, else the comments written above and beside it).
- `<!-- cli-reference -->` becomes every command of the `autoresearch` CLI with its arguments and
  flags, read from the typer app.
- `<!-- mutable-flags -->` becomes the flags a resumed run may change, read from the flags declared
  on the config model's fields (the CLI's options are built from the same declarations).

mkdocs runs this as a hook (mkdocs.yml `hooks:`), so `mkdocs build` regenerates both at every
build; `python docs/gen_reference.py config|cli|mutable` prints one to stdout.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import re
import sys
import tokenize
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The docs describe this checkout's code, not whatever autoresearch is installed.
sys.path.insert(0, str(ROOT / "src"))

MARKERS = {
    "<!-- config-table -->": "config",
    "<!-- cli-reference -->": "cli",
    "<!-- mutable-flags -->": "mutable",
}
CONFIG_MODULES = ("autoresearch.core.config", "autoresearch.config")
CLI_MODULES = ("autoresearch.cli.cli", "autoresearch.cli.app", "autoresearch.cli")


def first_module(names: tuple[str, ...], holding: str) -> types.ModuleType:
    """The first of the modules named that exists and has the attribute `holding`."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise  # the module exists but an import inside it failed: say so
            continue
        if hasattr(module, holding):
            return module
    raise ModuleNotFoundError(f"no `{holding}` in any of {', '.join(names)}")


def cell(text: object) -> str:
    """Text fit for one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


# ---- configuration ------------------------------------------------------------------------------


def field_comments(source: str) -> dict[tuple[str, str], str]:
    """{(class name, field name): the comment lines above the field and the comment beside it}."""
    lines = source.splitlines()
    inline = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1].strip() != tok.string:
            inline[tok.start[0]] = tok.string.lstrip("#").strip()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            above = []
            number = stmt.lineno - 1
            while number >= 1 and lines[number - 1].strip().startswith("#"):
                above.insert(0, lines[number - 1].strip().lstrip("#").strip())
                number -= 1
            beside = [inline[n] for n in range(stmt.lineno, stmt.end_lineno + 1) if n in inline]
            found[(node.name, stmt.target.id)] = " ".join(above + beside)
    return found


def type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        shown = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(shown) + (" (or unset)" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}s"
    if origin is dict:
        return f"table of {type_name(args[1])}s"
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation)


def bounds(field) -> str:
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    shown = []
    for item in field.metadata:
        for attr, sign in signs.items():
            value = getattr(item, attr, None)
            if value is not None:
                shown.append(f"{sign} {value:,}" if isinstance(value, int) else f"{sign} {value}")
    return ", ".join(shown)


def default_text(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, int | float):
        return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"
    return f"`{value!r}`"


def declared_flag(field):
    """The flag declared on the field (autoresearch.core.flags.Flag), or None."""
    from autoresearch.core.flags import flag_of

    return flag_of(field)


def is_model(annotation) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def spelled_out(module, text: str) -> str:
    """A comment's module constants (`one of AGENT_NAMES`) replaced by their values."""

    def values(match: re.Match) -> str:
        value = getattr(module, match.group(0), None)
        if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
            return ", ".join(f"`{v}`" for v in value)
        return match.group(0)

    return re.sub(r"\b[A-Z][A-Z_]{2,}\b", values, text)


def config_rows(module, model, comments, prefix: tuple[str, ...] = ()):
    """One row per leaf key, sections (nested models) after the top-level keys. A key with no
    description or comment of its own is described by its flag's help."""
    nested = []
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        if is_model(field.annotation):
            nested.append((path, field.annotation))
            continue
        key = f"[{'.'.join(prefix)}] {name}" if prefix else name
        declared = declared_flag(field)
        flag = f"`{declared.name}`" if declared else ""
        about = field.description or comments.get((model.__name__, name), "")
        about = spelled_out(module, about) or (declared.help if declared else "")
        kind = type_name(field.annotation)
        if bounds(field):
            kind += f", {bounds(field)}"
        yield key, kind, default_text(field), flag, about
        value_type = typing.get_args(field.annotation)[-1:] or (None,)
        if typing.get_origin(field.annotation) is dict and is_model(value_type[0]):
            entry = f'{".".join(path)}."NAME"'
            for sub, subfield in value_type[0].model_fields.items():
                sub_about = subfield.description or comments.get((value_type[0].__name__, sub), "")
                sub_kind = type_name(subfield.annotation)
                if bounds(subfield):
                    sub_kind += f", {bounds(subfield)}"
                yield f"[{entry}] {sub}", sub_kind, default_text(subfield), "", sub_about
    for path, sub_model in nested:
        yield from config_rows(module, sub_model, comments, path)


def config_table() -> str:
    module = first_module(CONFIG_MODULES, "Config")
    comments = field_comments(inspect.getsource(module))
    out = [
        "| key | type | default | flag | meaning |",
        "|---|---|---|---|---|",
    ]
    rows = list(config_rows(module, module.Config, comments))
    if not any(flag for _, _, _, flag, _ in rows):  # the flags moved: teach declared_flag where to
        raise RuntimeError(f"no key of {module.__name__} names its flag (see declared_flag)")
    for key, kind, default, flag, about in rows:
        out.append(f"| `{cell(key)}` | {cell(kind)} | {cell(default)} | {flag} | {cell(about)} |")
    where = module.__name__.replace(".", "/")
    return "\n".join(out) + f"\n\n*Generated from `src/{where}.py` at build time.*\n"


# ---- command line -------------------------------------------------------------------------------


def param_row(param) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
        default = param.default if param.default not in (None, ()) else ""
        return f"| {name} | {cell(getattr(param, 'help', '') or '')} | {cell(default)} |"
    names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    default = "" if param.is_flag or param.default in (None, False) else param.default
    about = param.help or ""
    shown = re.search(r"\s*\[default: ([^]]*)\]", about)
    if shown:  # a default that autoresearch.toml may change is written into the help
        about, default = about.replace(shown.group(0), ""), shown.group(1)
    return f"| {names} | {cell(about)} | {cell(default)} |"


def cli_reference() -> str:
    import typer

    module = first_module(CLI_MODULES, "app")
    group = typer.main.get_command(module.app)
    out = ["### `autoresearch`", "", cell(group.help or ""), "", "| | | |", "|---|---|---|"]
    out += [param_row(p) for p in group.params if p.name != "help"]
    for name, command in group.commands.items():
        if command.hidden:
            continue
        out += ["", f"### `autoresearch {name}`", ""]
        out += ["\n\n".join(p.strip() for p in (command.help or "").split("\n\n"))]
        out += ["", "| argument or flag | meaning | default |", "|---|---|---|"]
        out += [param_row(p) for p in command.params if p.name != "help"]
    return "\n".join(out) + "\n\n*Generated from the `autoresearch` command's own help.*\n"


# ---- the flags a resume may change ----------------------------------------------------------------


def mutable_flags() -> str:
    """ "`--iterations`, `--max-cost` and `--until`", inline in a sentence."""
    module = first_module(CONFIG_MODULES, "MUTABLE")
    names = [f"`{module.FLAGS[key]}`" for key in module.MUTABLE]
    return ", ".join(names[:-1]) + f" and {names[-1]}"


GENERATORS = {"config": config_table, "cli": cli_reference, "mutable": mutable_flags}


def on_page_markdown(markdown: str, **_) -> str:
    """The mkdocs hook: each marker replaced by what it names."""
    for marker, name in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, GENERATORS[name]())
    return markdown


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in GENERATORS:
        sys.exit("usage: python docs/gen_reference.py config|cli|mutable")
    print(GENERATORS[sys.argv[1]]())
