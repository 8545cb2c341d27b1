"""CLI coding agents (Claude Code, Codex, any command) that edit train.py in the experiment dir."""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
# go around it, and train.py stays unchanged. Inside autoresearch's sandbox it always runs without
# its own (CODEX_CONTAINED); agent.codex_sandbox applies where autoresearch's sandbox is off.
CODEX_ARGS = "exec --json --sandbox {sandbox} --skip-git-repo-check --output-last-message"
CODEX_CONTAINED = "danger-full-access"  # codex's own sandbox off: autoresearch's holds it
LAST_MESSAGE = "last-message.txt"
HOME_NAME = "home"  # the agent's HOME, in its scratch folder
# What each CLI needs in its HOME to authenticate (claude: its settings and OAuth credentials;
# codex: config.toml with the model providers, auth.json), copied into a fresh HOME for each call:
# the agent never sees the user's dotfiles, and what it writes there is discarded. The folder's
# variable, when the user set it (CLAUDE_CONFIG_DIR, CODEX_HOME), says where they are instead.
AUTH_FILES = {
    "claude": (
        "CLAUDE_CONFIG_DIR",
        ".claude",
        (".credentials.json", "settings.json"),
        ".claude.json",
    ),
    "codex": ("CODEX_HOME", ".codex", ("config.toml", "auth.json"), None),
}
# Variables that would lead a program back into the user's own configuration.
UNSET_ENV = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME",
             "XDG_RUNTIME_DIR", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_DIR")  # fmt: skip


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


def _skipped(_folder: str, names: list[str]) -> set[str]:
    return SKIPPED_DIRS & set(names)


def fresh_home(home: Path, preset: str | None) -> dict[str, str]:
    """Fill home with what preset's CLI needs to authenticate (copies of regular files only);
    the agent's environment: ours, with HOME there and nothing that leads back to ours."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env["HOME"] = str(home)
    if preset not in AUTH_FILES:
        return env
    variable, folder, names, beside = AUTH_FILES[preset]
    source = Path(os.environ.get(variable) or Path.home() / folder)
    copies = [(source / name, home / folder / name) for name in names]
    if beside:
        copies.append((Path.home() / beside, home / beside))
    for src, dest in copies:
        data = read_plain(src)
        if data is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(0o600)
    if os.environ.get(variable):
        env[variable] = str(home / folder)
    return env


def read_plain(path: Path) -> bytes | None:
    """A regular file's bytes, opened without following a link; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


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
        for place in [*reversed(Path(rel).parents[:-1]), Path(rel)]:
            _remove(root / place)  # a link in a file's or a folder's place: never followed
        if path.is_dir():
            shutil.rmtree(path)
        if rel in before:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(saved / rel, path, follow_symlinks=False)
    for rel in sorted(after_dirs - before_dirs):  # a parent sorts before its children
        if (root / rel).is_dir():
            shutil.rmtree(root / rel)
    for folder, dirs, _names in os.walk(root):  # bytecode never travels into an experiment
        for name in SKIPPED_DIRS & set(dirs):
            _remove(Path(folder, name))
    return reverted


def _remove(path: Path) -> None:
    """A link or a file at path removed, and a bytecode folder; any other folder stays."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir() and path.name in SKIPPED_DIRS:
        shutil.rmtree(path)


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
            reverted = _restore(request.workdir, saved)
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
