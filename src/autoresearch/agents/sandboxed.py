"""Where a CLI agent (claude, codex, a command) runs: inside the sandbox training uses, with the
labels and the run stores hidden, wherever that sandbox is on. With it off the agent can read
every file the user can, so it runs only where the user said so: [agent] unsandboxed_ok = true.
Doctor and `run`'s preflight check the CLI through the same wrap a proposal uses."""

from __future__ import annotations

import tempfile
from pathlib import Path

from autoresearch.agents.base import AgentError, Wrap
from autoresearch.agents.command import CommandAgent
from autoresearch.core.config import Config
from autoresearch.training import sandbox
from autoresearch.training.experiment import secret_paths


def wrap_for(sandboxed: bool, secret: list[Path], workdir: Path) -> Wrap | None:
    """The agent sandbox for a CLI agent working in workdir; None where training is
    unsandboxed too."""
    if not sandboxed:
        return None

    def wrap(argv: list[str], scratch: Path) -> list[str]:
        view = sandbox.agent_view(workdir, scratch, secret, argv)
        sandbox.give_to_sandbox([workdir, scratch])
        return sandbox.command(view, argv, workdir)

    return wrap


def unsandboxed_warning(name: str) -> str:
    return (
        f"the {name} agent runs UNSANDBOXED ([agent] unsandboxed_ok = true): it can read every "
        "file you can, the validation labels, the data folder, the run stores (.autoresearch) "
        "and your home included; only its changes to files other than train.py are undone"
    )


def check_cli(agent: CommandAgent, workspace: Path, cfg: Config) -> str:
    """The CLI answers `--version` inside the agent sandbox the run will use; unsandboxed, only
    with the user's consent (the line then says what it can read)."""
    try:
        sandboxed, warning = sandbox.resolve(cfg.sandbox)
    except sandbox.SandboxError as err:
        raise AgentError(str(err)) from None
    if not sandboxed:
        why = warning or 'sandbox = "none"'
        if not cfg.agent.unsandboxed_ok:
            raise AgentError(
                f"the {agent.name} agent would run unsandboxed ({why}) and could read every file "
                "you can, the validation labels included; make the sandbox work, or set "
                "unsandboxed_ok = true under [agent] in autoresearch.toml to run it anyway"
            )
        return f"{agent.check()}; WARNING: {unsandboxed_warning(agent.name)}"
    with tempfile.TemporaryDirectory(prefix="autoresearch-check-") as tmp:
        wrap = wrap_for(True, secret_paths(workspace, cfg), Path(tmp))
        return agent.check(wrap)
