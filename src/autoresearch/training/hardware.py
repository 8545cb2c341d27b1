"""The machine a run trained on, as a bundle records it: CPU, cores, memory, GPUs, and the
training interpreter's torch and CUDA. Two runs are comparable budget for budget only on the
same hardware (`same_hardware`); versions are shown, not compared."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess

import psutil

# torch and CUDA as the training interpreter sees them; its own process, never ours.
_TORCH = (
    "import json\n"
    "try:\n"
    "    import torch\n"
    "    found = {'torch': torch.__version__, 'cuda': torch.version.cuda}\n"
    "except Exception as e:\n"
    "    found = {'torch': None, 'cuda': None, 'torch_error': type(e).__name__}\n"
    "print(json.dumps(found))\n"
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[dict]:
    """[{name, memory_mb}] from nvidia-smi where it is on PATH, else []."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        name, _, memory = line.rpartition(",")
        if name.strip():
            found.append({"name": name.strip(), "memory_mb": int(float(memory.strip() or 0))})
    return found


def torch_versions(python: str) -> dict:
    """The training interpreter's torch and CUDA versions (None where it has none)."""
    try:
        proc = subprocess.run(
            [python, "-c", _TORCH], capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        )  # fmt: skip
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"torch": None, "cuda": None}


def fingerprint(python: str | None) -> dict:
    """This machine; with the training interpreter's torch and CUDA where python is given."""
    return {
        "host": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpus(),
        **(torch_versions(python) if python else {}),
    }


def _key(found: dict) -> tuple:
    """What makes a budget buy the same training: processor, cores, memory (to the GiB), GPUs."""
    gpus_key = tuple(sorted((g["name"], round(g["memory_mb"] / 1024)) for g in found["gpus"]))
    return found["cpu"], found["cores"], round(found["memory_gb"]), gpus_key


def same_hardware(a: dict, b: dict) -> bool:
    return _key(a) == _key(b)


def describe(found: dict) -> str:
    """ "AMD EPYC 7B13, 2 cores, 7.8 GB, no GPU, torch 2.13.0" """
    gpu = ", ".join(f"{g['name']} {g['memory_mb'] / 1024:.0f} GB" for g in found["gpus"])
    torch = f"torch {found['torch']}" if found.get("torch") else "no torch"
    cuda = f" (CUDA {found['cuda']})" if found.get("cuda") else ""
    return (
        f"{found['cpu']}, {found['cores']} cores, {found['memory_gb']:g} GB, "
        f"{gpu or 'no GPU'}, {torch}{cuda}"
    )
