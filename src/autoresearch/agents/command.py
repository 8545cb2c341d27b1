"""CLI coding agents (Claude Code, Codex, any command) that edit train.py in the experiment dir."""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from autoresearch.agents.base import AgentError, Answer, Proposal, Request, Wrap
from autoresearch.agents.cli_output import (
    Outcome,
    blocked,
    claude_outcome,
    codex_outcome,
    exit_reason,
    explain,
    one_line,
)
from autoresearch.agents.pricing import cost, lookup, missing
from autoresearch.config import AgentConfig

PRESETS = ("claude", "codex")
RAW_CAP = 200_000  # characters of agent stdout kept in Proposal.raw_output
EXPLANATION_CAP = 20_000
VERSION_TIMEOUT_SECS = 30
SKIPPED_DIRS = {"__pycache__"}
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
# go around it, and train.py stays unchanged. agent.codex_sandbox = "danger-full-access" runs it
# without its own sandbox, for when the experiment is already contained.
CODEX_ARGS = "exec --json --sandbox {sandbox} --skip-git-repo-check --output-last-message"
LAST_MESSAGE = "last-message.txt"


@dataclass
class _Run:
    stdout: str
    stderr: str
    returncode: int | None  # None: killed at the deadline


def _instructions() -> str:
    return resources.files("autoresearch").joinpath("prompts/command_agent.txt").read_text()


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


# --- the experiment directory: every file but train.py must come out as it went in -----------


def _skipped(_folder: str, names: list[str]) -> set[str]:
    return SKIPPED_DIRS & set(names)


def _tree(root: Path) -> tuple[set[str], set[str]]:
    """The regular files and the folders under root; symlinks are neither listed nor followed."""
    files, folders = set(), set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not Path(folder, d).is_symlink()]
        folders.update(Path(folder, d).relative_to(root).as_posix() for d in dirs)
        for name in names:
            path = Path(folder, name)
            if not path.is_symlink() and path.is_file():
                files.add(path.relative_to(root).as_posix())
    return files, folders


def _same(a: Path, b: Path) -> bool:
    return a.stat().st_mode == b.stat().st_mode and filecmp.cmp(a, b, shallow=False)


def _restore(root: Path, saved: Path) -> list[str]:
    """Undo every change under root to a file other than train.py, from saved (a copy of root
    taken before); return the files that were changed."""
    before, before_dirs = _tree(saved)
    after, after_dirs = _tree(root)
    reverted = []
    for rel in sorted(before | after):
        if rel == "train.py" or (rel in before and rel in after and _same(saved / rel, root / rel)):
            continue
        reverted.append(rel)
        path = root / rel
        if rel not in before:
            path.unlink()
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(saved / rel, path)
    for rel in sorted(after_dirs - before_dirs):  # a parent sorts before its children
        if (root / rel).is_dir():
            shutil.rmtree(root / rel)
    return reverted


# --- the agent ---------------------------------------------------------------------------------


class CommandAgent:
    """Runs a CLI agent in request.workdir; it edits train.py there and ends with an explanation."""

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
            shutil.copytree(request.workdir, saved, symlinks=True, ignore=_skipped)
            argv = self._argv(prompt, Path(tmp), request.secret)
            if request.wrap is not None:
                argv = request.wrap(argv, Path(tmp))
            run = self._run(argv, prompt, request.workdir, self._env(Path(tmp)))
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
            reverted = _restore(request.workdir, saved)
        train = request.workdir / "train.py"
        if outcome.reason is None and not train.is_file():
            outcome.reason = "the agent deleted train.py"
        notes = blocked(outcome, train, request.train_py, contained=request.wrap is not None)
        return Proposal(
            train_py=None if outcome.reason else train.read_text(errors="replace"),
            explanation=_tail(outcome.explanation.strip(), EXPLANATION_CAP),
            raw_output=_tail(run.stdout, RAW_CAP),
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
            run = self._run([self.executable, *CLAUDE_TEXT_ARGS, *model], prompt, Path(tmp))
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
        version = one_line(done.stdout) or "version unknown"
        return f"{self.name}: {version} ({self.executable}){inside}"

    def _argv(self, prompt: str, tmp: Path, secret: list[Path]) -> list[str]:
        model = ["--model", self.cfg.model] if self.cfg.model else []
        if self.preset == "claude":
            # Read tools need no approval and reach any path; deny rules ("//" = from the root)
            # keep Read, Grep and Glob out of the labels and the run stores.
            denied = [f"Read(/{Path(p).absolute()}/**)" for p in secret]
            return [self.executable, *CLAUDE_ARGS, *denied, *model]
        if self.preset == "codex":
            args = CODEX_ARGS.format(sandbox=self.cfg.codex_sandbox).split()
            return [self.executable, *args, str(tmp / LAST_MESSAGE), *model, "-"]
        prompt_file = tmp / "prompt.md"
        prompt_file.write_text(prompt)
        argv = [arg.replace("{prompt_file}", str(prompt_file)) for arg in self.cfg.command]
        return [self.executable, *argv[1:]]

    def _env(self, scratch: Path) -> dict[str, str] | None:
        """codex's temporary folder is its scratch folder: codex refuses to create the helpers
        its own sandbox runs (codex-linux-sandbox, apply_patch) when CODEX_HOME lies under the
        temporary folder ("Refusing to create helper binaries under temporary dir"), as a HOME
        under /tmp puts it; then every patch and command fails (openai/codex#17367)."""
        return {**os.environ, "TMPDIR": str(scratch)} if self.preset == "codex" else None

    def _run(self, argv: list[str], prompt: str, cwd: Path, env=None) -> _Run:
        """Run argv in its own process group; the whole group is SIGKILLed at the deadline."""
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(prompt.encode(), timeout=self.cfg.timeout_secs)
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # a descendant in another session holds the pipes
                proc.stdout.close()
                proc.stderr.close()
                proc.wait()
                out, err = b"", b""
            returncode = None
        finally:
            _kill_group(proc.pid)  # whatever it left running in the background
        return _Run(out.decode(errors="replace"), err.decode(errors="replace"), returncode)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
