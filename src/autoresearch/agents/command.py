"""CLI coding agents (Claude Code, Codex, any command) that edit train.py in the experiment dir."""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from autoresearch.agents.base import AgentError, Proposal, Request
from autoresearch.agents.pricing import cost
from autoresearch.config import AgentConfig
from autoresearch.records import Usage

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
# Checked against `claude --help` and a real (logged-out) run of Claude Code 2.1.197.
# Reading is scoped to the experiment directory; the deny rules _argv appends for the labels and
# the run stores extend the --disallowedTools list, so it must stay last here.
CLAUDE_ARGS = (
    "-p --output-format json --allowedTools Read(./**) Grep Glob Edit(./train.py) "
    "--disallowedTools Bash WebFetch WebSearch"
).split()
# `codex exec` (openai/codex, codex-rs/exec/src/cli.rs): --json prints JSONL events (turn.completed
# carries usage), --output-last-message FILE gets the final message, --skip-git-repo-check allows a
# folder outside git, PROMPT "-" reads the prompt from stdin. Its sandbox is read-only by default;
# --sandbox workspace-write lets it edit files under the cwd (--full-auto is deprecated for it).
# Checked against `codex exec --help` and a real (offline) run of codex-cli 0.169.0.
CODEX_ARGS = "exec --json --sandbox workspace-write --skip-git-repo-check --output-last-message"
LAST_MESSAGE = "last-message.txt"


@dataclass
class _Run:
    stdout: str
    stderr: str
    returncode: int | None  # None: killed at the deadline


@dataclass
class _Outcome:
    explanation: str = ""
    usage: Usage = field(default_factory=lambda: Usage(cost_usd=None))
    reason: str | None = None


def _instructions() -> str:
    return resources.files("autoresearch").joinpath("prompts/command_agent.txt").read_text()


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else "..." + line[-limit:]


def _exit_reason(name: str, run: _Run) -> str:
    detail = _one_line(run.stderr) or _one_line(run.stdout) or "no output"
    return f"`{name}` exited with code {run.returncode}: {detail}"


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
            run = self._run(argv, prompt, request.workdir)
            if run.returncode is None:
                outcome = _Outcome(reason=f"agent timed out after {self.cfg.timeout_secs:g} s")
            elif self.preset == "claude":
                outcome = _claude_outcome(run)
            elif self.preset == "codex":
                outcome = _codex_outcome(run, Path(tmp) / LAST_MESSAGE)
                if self.cfg.model:  # codex reports tokens only: price them when the model is known
                    outcome.usage.cost_usd = cost(self.cfg.model, outcome.usage, self.cfg.prices)
            elif run.returncode != 0:
                outcome = _Outcome(reason=_exit_reason(Path(self.executable).name, run))
            else:
                outcome = _Outcome(explanation=run.stdout.strip())
            reverted = _restore(request.workdir, saved)
        train = request.workdir / "train.py"
        if outcome.reason is None and not train.is_file():
            outcome.reason = "the agent deleted train.py"
        return Proposal(
            train_py=None if outcome.reason else train.read_text(errors="replace"),
            explanation=_tail(outcome.explanation.strip(), EXPLANATION_CAP),
            raw_output=_tail(run.stdout, RAW_CAP),
            invalid_reason=outcome.reason,
            usage=outcome.usage,
            reverted=reverted,
        )

    def check(self) -> str:
        if self.preset is None:
            if shutil.which(self.executable) is None:
                raise AgentError(f"`{self.executable}` is no longer an executable program")
            return f"command: {self.executable}"
        try:
            done = subprocess.run(
                [self.executable, "--version"],
                capture_output=True,
                text=True,
                timeout=VERSION_TIMEOUT_SECS,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise AgentError(f"`{self.name} --version` failed: {err}") from None
        if done.returncode != 0:
            detail = _one_line(done.stderr) or _one_line(done.stdout) or "no output"
            raise AgentError(
                f"`{self.name} --version` exited with code {done.returncode}: {detail}"
            )
        return f"{self.name}: {_one_line(done.stdout) or 'version unknown'} ({self.executable})"

    def _argv(self, prompt: str, tmp: Path, secret: list[Path]) -> list[str]:
        model = ["--model", self.cfg.model] if self.cfg.model else []
        if self.preset == "claude":
            # Read tools need no approval and reach any path; deny rules ("//" = from the root)
            # keep Read, Grep and Glob out of the labels and the run stores.
            denied = [f"Read(/{Path(p).absolute()}/**)" for p in secret]
            return [self.executable, *CLAUDE_ARGS, *denied, *model]
        if self.preset == "codex":
            return [self.executable, *CODEX_ARGS.split(), str(tmp / LAST_MESSAGE), *model, "-"]
        prompt_file = tmp / "prompt.md"
        prompt_file.write_text(prompt)
        argv = [arg.replace("{prompt_file}", str(prompt_file)) for arg in self.cfg.command]
        return [self.executable, *argv[1:]]

    def _run(self, argv: list[str], prompt: str, cwd: Path) -> _Run:
        """Run argv in its own process group; the whole group is SIGKILLed at the deadline."""
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
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


# --- reading what the presets print ---------------------------------------------------------


def _claude_outcome(run: _Run) -> _Outcome:
    data = _json_object(run.stdout)
    if data is None:
        if run.returncode != 0:
            return _Outcome(reason=_exit_reason("claude", run))
        return _Outcome(reason=f"claude printed no JSON result: {_one_line(run.stdout, 120)}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    cached = _int(usage.get("cache_read_input_tokens"))
    cost = data.get("total_cost_usd")
    outcome = _Outcome(
        explanation=data["result"] if isinstance(data.get("result"), str) else "",
        usage=Usage(
            tokens_in=_int(usage.get("input_tokens"))
            + _int(usage.get("cache_creation_input_tokens"))
            + cached,
            tokens_out=_int(usage.get("output_tokens")),
            tokens_cached=cached,
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
        ),
    )
    # A failed call can still say subtype "success" (e.g. "Not logged in"), so is_error decides.
    kind = data.get("subtype") if data.get("subtype") != "success" else None
    if data.get("is_error") or data.get("type") != "result" or kind:
        detail = _one_line(outcome.explanation) or "no message"
        outcome.reason = f"claude reported an error{f' ({kind})' if kind else ''}: {detail}"
    elif run.returncode != 0:
        outcome.reason = _exit_reason("claude", run)
    return outcome


def _codex_outcome(run: _Run, last_message: Path) -> _Outcome:
    """Usage from turn.completed events; "error" events are often retries, so only turn.failed
    or the exit code make the call invalid."""
    outcome, failure, last_error = _Outcome(), None, ""
    for line in run.stdout.splitlines():
        event = _json_object(line) or {}
        kind, item, usage = event.get("type"), event.get("item"), event.get("usage")
        if kind == "turn.completed" and isinstance(usage, dict):
            outcome.usage += Usage(
                tokens_in=_int(usage.get("input_tokens")),
                tokens_out=_int(usage.get("output_tokens")),
                tokens_cached=_int(usage.get("cached_input_tokens")),
                cost_usd=None,
            )
        elif kind == "item.completed" and isinstance(item, dict):
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                outcome.explanation = item["text"]
        elif kind == "turn.failed":
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            failure = _one_line(str(error.get("message", ""))) or "turn failed"
        elif kind == "error":
            last_error = _one_line(str(event.get("message", "")))
    if last_message.is_file() and last_message.read_text(errors="replace").strip():
        outcome.explanation = last_message.read_text(errors="replace")
    if failure:
        outcome.reason = f"codex failed: {failure}"
    elif run.returncode != 0:
        detail = last_error or _one_line(run.stderr) or "no output"
        outcome.reason = f"`codex` exited with code {run.returncode}: {detail}"
    return outcome


def _json_object(text: str) -> dict | None:
    """The JSON object text holds, or the one on its last non-empty line; None if there is none."""
    text = text.strip()
    for candidate in (text, text.rsplit("\n", 1)[-1]):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
