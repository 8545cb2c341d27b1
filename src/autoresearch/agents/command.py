"""CLI coding agents (Claude Code, Codex, any command) that edit train.py in the experiment dir."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from autoresearch.agents.agent_folder import fresh_home, restore, skipped
from autoresearch.agents.base import AgentError, Answer, Proposal, Request, Wrap
from autoresearch.agents.cli_output import (
    Outcome,
    blocked,
    claude_outcome,
    codex_outcome,
    end_of,
    exit_reason,
    explain,
)
from autoresearch.agents.pricing import cost, lookup, missing
from autoresearch.agents.streams import Pipes
from autoresearch.agents.validate import read_train_py
from autoresearch.core.config import AgentConfig

PRESETS = ("claude", "codex")
RAW_CAP = 200_000  # characters of agent stdout kept in Proposal.raw_output
EXPLANATION_CAP = 20_000
VERSION_TIMEOUT_SECS = 30  # doctor's checks of a CLI: `--version`, a one-line request
# Where an API is configured in the environment, doctor and run's preflight check that the CLI
# answers a one-line request (as they do for an API agent); elsewhere only `--version`.
API_SETTINGS = {
    "claude": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"),
    "codex": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_API_KEY"),
}
PING = "Reply with the single word OK."
INSTALL_HINTS = {
    "claude": "install Claude Code or choose another agent",
    "codex": "install the Codex CLI or choose another agent",
}

# Claude Code print mode (https://docs.anthropic.com/en/docs/claude-code/cli-reference and
# https://code.claude.com/docs/en/permissions): -p answers once and exits, --output-format json
# prints one {"type": "result", "is_error", "result", "total_cost_usd", "usage", ...} object.
# In -p mode nothing can be approved interactively, so a tool call that no allow rule covers is
# denied: --allowedTools pre-approves reading and edits to ./train.py only ("Edit rules apply to all
# built-in tools that edit files", paths relative to the current directory), --disallowedTools
# removes the shell and the web from the model's context. Anything that slips through is reverted.
# Checked against `claude --help` and real runs of Claude Code 2.1.332 (tests/test_real_clis.py).
# Reading is scoped to the experiment directory: Read, Grep and Glob need no rule there and are
# refused outside it in -p mode ("Claude requested permissions to read from /..., but you haven't
# granted it yet"); a bare `Grep` or `Glob` rule would allow them on every path. The deny rules
# _argv appends for the labels and the run stores extend the --disallowedTools list, so it must
# stay last here.
CLAUDE_ARGS = (
    "-p --output-format json --allowedTools Read(./**) Edit(./train.py) "
    "--disallowedTools Bash WebFetch WebSearch"
).split()
# Text only, for the strategist: `--tools ""` leaves Claude Code no built-in tool at all (it can
# only answer), and --strict-mcp-config with no --mcp-config no MCP server from the user's
# settings either (claude --help: "--tools <tools...> ... Use \"\" to disable all tools";
# "--strict-mcp-config: Only use MCP servers from --mcp-config").
CLAUDE_TEXT_ARGS = ["-p", "--output-format", "json", "--tools", "", "--strict-mcp-config"]
# `codex exec` (openai/codex, codex-rs/exec/src/cli.rs): --json prints JSONL events (turn.completed
# carries usage), --output-last-message FILE gets the final message, --skip-git-repo-check allows a
# folder outside git, PROMPT "-" reads the prompt from stdin. Its sandbox is read-only by default;
# --sandbox workspace-write lets it edit files under the cwd (--full-auto is deprecated for it).
# Checked against `codex exec --help` and real runs of codex-cli 0.171.0 (tests/test_real_clis.py).
# Its sandbox limits writes, not reads: a command it runs reads whatever the user can.
# On Linux that sandbox is bubblewrap, which needs unprivileged user namespaces: in unprivileged
# Docker/podman every command and patch fails with "bwrap: No permissions to create a new
# namespace" (or "Creating new namespace failed", "setting up uid map: Permission denied",
# "loopback: Failed RTM_NEWADDR"; openai/codex#17337, #29908, PR #15893), exec never asks to
# go around it, and train.py stays unchanged. Inside autoresearch's sandbox it always runs without
# its own (CODEX_CONTAINED); agent.codex_sandbox applies where autoresearch's sandbox is off.
CODEX_ARGS = "exec --json --sandbox {sandbox} --skip-git-repo-check --output-last-message"
CODEX_CONTAINED = "danger-full-access"  # codex's own sandbox off: autoresearch's holds it
LAST_MESSAGE = "last-message.txt"
HOME_NAME = "home"  # the agent's HOME, in its scratch folder


@dataclass
class _Run:
    stdout: str
    stderr: str
    returncode: int | None  # None: killed at the deadline
    dropped: int = 0  # bytes of stdout not kept as it was read (streams.py)


def _instructions() -> str:
    return resources.files("autoresearch").joinpath("prompts/command_agent.txt").read_text()


def _tail(text: str, limit: int, dropped: int = 0) -> str:
    """The end of text; dropped: bytes of it already dropped while it was read."""
    if len(text) <= limit:
        return text
    also = f", {dropped} bytes before them as it was read" if dropped else ""
    return f"[... {len(text) - limit} characters cut{also} ...]\n" + text[-limit:]


# --- the experiment directory: every file but train.py must come out as it went in -----------


class CommandAgent:
    """Runs a CLI agent in request.workdir; it edits train.py there and ends with an explanation."""

    can_repair = True

    def __init__(self, cfg: AgentConfig, workspace: Path, preset: str | None = None):
        if preset is None and cfg.name in PRESETS:
            preset = cfg.name
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown command-agent preset {preset!r}")
        self.cfg = cfg
        self.preset = preset
        self.name = preset or "command"
        if preset is None and not cfg.command:
            raise AgentError(
                "agent.command is empty; set it in autoresearch.toml, e.g. "
                'command = ["my-agent", "--prompt", "{prompt_file}"]'
            )
        program = preset or cfg.command[0]
        if "/" in program:  # a path: relative to the workspace, like every path in the config
            program = str((workspace / Path(program).expanduser()).absolute())
        found = shutil.which(program)
        if found is None:
            hint = INSTALL_HINTS.get(program, "fix agent.command or choose another agent")
            raise AgentError(f"`{program}` not found on PATH; {hint}")
        self.executable = found

    def propose(self, request: Request) -> Proposal:
        prompt = f"{request.prompt.rstrip()}\n\n{_instructions()}"
        with (
            tempfile.TemporaryDirectory(prefix="autoresearch-agent-") as tmp,
            tempfile.TemporaryDirectory(prefix="autoresearch-saved-") as kept,
        ):
            saved = Path(kept) / "before"  # out of the agent's reach, even unsandboxed by path
            shutil.copytree(request.workdir, saved, symlinks=True, ignore=skipped)
            home = Path(tmp) / HOME_NAME  # inside the scratch folder the sandbox binds
            env = self._with_tmp(fresh_home(home, self.preset), Path(tmp))
            argv = self._argv(prompt, Path(tmp), request.secret, request.wrap is not None)
            if request.wrap is not None:
                argv = request.wrap(argv, Path(tmp))
            run = self._run(argv, prompt, request.workdir, env)
            if run.returncode is None:
                outcome = Outcome(reason=f"agent timed out after {self.cfg.timeout_secs:g} s")
            elif self.preset == "claude":
                outcome = claude_outcome(run)
            elif self.preset == "codex":
                outcome = codex_outcome(run, Path(tmp) / LAST_MESSAGE)
                if self.cfg.model:  # codex reports tokens only: price them when the model is known
                    outcome.usage.cost_usd = cost(self.cfg.model, outcome.usage, self.cfg.prices)
            elif run.returncode != 0:
                outcome = Outcome(reason=exit_reason(Path(self.executable).name, run))
            else:
                outcome = Outcome(explanation=run.stdout.strip())
            reverted = restore(request.workdir, saved)
        train = request.workdir / "train.py"
        code = None
        if outcome.reason is None:
            code, outcome.reason = read_train_py(train, request.max_train_py_kb)
        notes = blocked(outcome, code, request.train_py)
        return Proposal(
            train_py=None if outcome.reason else code,
            explanation=_tail(outcome.explanation.strip(), EXPLANATION_CAP),
            raw_output=_tail(run.stdout, RAW_CAP, run.dropped),
            invalid_reason=outcome.reason,
            usage=outcome.usage,
            reverted=reverted,
            notes=notes,
            model=outcome.model,
        )

    def complete(self, prompt: str) -> Answer:
        """The claude CLI's answer in text mode (no tools), run in an empty folder."""
        if self.preset != "claude":
            raise AgentError(f"the {self.name} agent has no text-only mode")
        model = ["--model", self.cfg.model] if self.cfg.model else []
        with tempfile.TemporaryDirectory(prefix="autoresearch-text-") as tmp:
            env = fresh_home(Path(tmp) / HOME_NAME, self.preset)
            run = self._run([self.executable, *CLAUDE_TEXT_ARGS, *model], prompt, Path(tmp), env)
        if run.returncode is None:
            return Answer(None, reason=f"claude timed out after {self.cfg.timeout_secs:g} s")
        outcome = claude_outcome(run)
        return Answer(outcome.explanation, outcome.usage, outcome.reason)

    def unpriced(self) -> str | None:
        if self.preset == "claude":
            return None  # Claude Code reports the dollars itself
        if self.preset is None:
            return "the command agent reports no cost; run it without a cost limit"
        if not self.cfg.model:
            return "codex reports tokens only, so set agent.model (and [agent.prices] for it)"
        return missing(self.cfg.model) if lookup(self.cfg.model, self.cfg.prices) is None else None

    def check(self, wrap: Wrap | None = None) -> str:
        """`--version`, run the way a proposal runs the CLI: through wrap (the agent sandbox,
        in an empty working folder) where there is one, so that what the CLI needs at run time
        is seen to be there."""
        if self.preset is None:
            if shutil.which(self.executable) is None:
                raise AgentError(f"`{self.executable}` is no longer an executable program")
            return f"command: {self.executable}"
        inside = " in the agent sandbox" if wrap is not None else ""
        with tempfile.TemporaryDirectory(prefix="autoresearch-check-") as tmp:
            argv = [self.executable, "--version"]
            if wrap is not None:
                argv = wrap(argv, Path(tmp))
            try:
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=VERSION_TIMEOUT_SECS,
                    stdin=subprocess.DEVNULL,
                    cwd=tmp,
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                raise AgentError(f"`{self.name} --version`{inside} failed: {err}") from None
        if done.returncode != 0:
            detail = explain(done.stderr) or explain(done.stdout) or "no output"
            raise AgentError(
                f"`{self.name} --version`{inside} exited with code {done.returncode}: {detail}"
            )
        version = end_of(done.stdout) or "version unknown"
        line = f"{self.name}: {version} ({self.executable}){inside}"
        if any(os.environ.get(name) for name in API_SETTINGS[self.preset]):
            line += f"; {self._answers(wrap)}"
        return line

    def _answers(self, wrap: Wrap | None) -> str:
        """A one-line request, made as a proposal makes its own (the wrap, a fresh HOME): the
        CLI reaches the API its environment names. AgentError with the CLI's reason if not."""
        with tempfile.TemporaryDirectory(prefix="autoresearch-check-") as tmp:
            scratch = Path(tmp)
            env = fresh_home(scratch / HOME_NAME, self.preset)
            model = ["--model", self.cfg.model] if self.cfg.model else []
            if self.preset == "claude":
                argv = [self.executable, *CLAUDE_TEXT_ARGS, *model]
            else:
                argv = self._argv(PING, scratch, [], wrap is not None)
            if wrap is not None:
                argv = wrap(argv, scratch)
            run = self._run(argv, PING, scratch, env, VERSION_TIMEOUT_SECS)
            if run.returncode is None:
                outcome = Outcome(reason=f"no answer in {VERSION_TIMEOUT_SECS} s")
            elif self.preset == "claude":
                outcome = claude_outcome(run)
            else:
                outcome = codex_outcome(run, scratch / LAST_MESSAGE)
        if outcome.reason:
            raise AgentError(f"`{self.name}` could not answer a one-line request: {outcome.reason}")
        return f"answered a one-line request ({outcome.model or self.cfg.model or 'its default model'})"

    def _argv(self, prompt: str, tmp: Path, secret: list[Path], contained: bool) -> list[str]:
        """contained: inside autoresearch's sandbox, where codex runs without its own (its
        bubblewrap cannot nest there: no new namespaces; ours hides reads too, its own only
        limits writes)."""
        model = ["--model", self.cfg.model] if self.cfg.model else []
        if self.preset == "claude":
            # Read tools need no approval and reach any path; deny rules ("//" = from the root)
            # keep Read, Grep and Glob out of the labels and the run stores.
            denied = [f"Read(/{Path(p).absolute()}/**)" for p in secret]
            return [self.executable, *CLAUDE_ARGS, *denied, *model]
        if self.preset == "codex":
            mode = CODEX_CONTAINED if contained else self.cfg.codex_sandbox
            args = CODEX_ARGS.format(sandbox=mode).split()
            return [self.executable, *args, str(tmp / LAST_MESSAGE), *model, "-"]
        prompt_file = tmp / "prompt.md"
        prompt_file.write_text(prompt)
        argv = [arg.replace("{prompt_file}", str(prompt_file)) for arg in self.cfg.command]
        return [self.executable, *argv[1:]]

    def _with_tmp(self, env: dict[str, str], scratch: Path) -> dict[str, str]:
        """codex's temporary folder is one of its own, beside its HOME: codex refuses to create
        the helpers its own sandbox runs (codex-linux-sandbox, apply_patch) when CODEX_HOME lies
        under the temporary folder ("Refusing to create helper binaries under temporary dir"),
        as a HOME under /tmp puts it; then every patch and command fails (openai/codex#17367)."""
        if self.preset != "codex":
            return env
        (scratch / "tmp").mkdir(exist_ok=True)
        return {**env, "TMPDIR": str(scratch / "tmp")}

    def _run(
        self, argv: list[str], prompt: str, cwd: Path, env: dict[str, str], timeout=None
    ) -> _Run:
        """Run argv in its own process group; the whole group is SIGKILLed at the deadline. Its
        output is read while it runs, capped (streams.py)."""
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pipes = Pipes(proc, prompt.encode())
        until = time.monotonic() + (timeout or self.cfg.timeout_secs)
        returncode: int | None = None
        try:
            if pipes.pump(until):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    returncode = proc.wait(timeout=max(0.0, until - time.monotonic()))
            if returncode is None:  # the deadline: kill it, keep what it printed before
                _kill_group(proc.pid)
                pipes.pump(time.monotonic() + 5)  # a descendant in another session may hold them
        finally:
            _kill_group(proc.pid)  # whatever it left running in the background
            pipes.close()
            proc.wait()
        out, err = pipes.text(proc.stdout), pipes.text(proc.stderr)
        return _Run(out, err, returncode, pipes.dropped(proc.stdout))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
