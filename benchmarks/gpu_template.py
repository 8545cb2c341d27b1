"""The Fashion-MNIST template trained once on a CUDA GPU, as an experiment of a run trains it.

python benchmarks/gpu_template.py [--budget 60] [--grace 30] [--data-dir DIR]
                                  [--sandbox auto|bwrap|none] [--set BATCH_SIZE=512 ...]

Prints the device train.py named in its log, val_accuracy (and the holdout), the epochs done, the
training seconds and the peak GPU memory the experiment reports (results.tsv's memory_gb, from
the `peak_vram_mb:` line train.py prints on CUDA). `--set NAME=VALUE` changes a hyperparameter
line first. Without a CUDA GPU (or with a CPU build of torch) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from workspaces import fresh_workspace

from autoresearch.core import config
from autoresearch.core.log_metrics import GPU_MEMORY, pattern_for, read_metrics
from autoresearch.core.records import OK
from autoresearch.store import workspace
from autoresearch.training.experiment import run_experiment

EPOCHS = re.compile(r"^trained (\d+) epochs", re.MULTILINE)


def changed(code: str, settings: list[str]) -> str:
    for setting in settings:
        name, value = setting.split("=", 1)
        line = next((x for x in code.splitlines() if x.startswith(f"{name} = ")), None)
        if line is None:
            sys.exit(f"--set {setting}: train.py has no line '{name} = ...'")
        code = code.replace(line, f"{name} = {value}  # --set")
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--grace", type=float, default=30)
    parser.add_argument("--data-dir", default=os.environ.get("AUTORESEARCH_DATA_DIR"))
    parser.add_argument(
        "--sandbox", default=None, help="auto | bwrap | none (default: the config's)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()

    import torch  # the training interpreter is this one

    if not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        print(f"no CUDA GPU here (torch {torch.__version__}, {build}): nothing to measure")
        return
    print(f"GPU: {torch.cuda.get_device_name(0)} (torch {torch.__version__})")
    with tempfile.TemporaryDirectory() as tmp:
        ws = fresh_workspace(Path(tmp), args.data_dir)
        code = changed((ws / "train.py").read_text(), args.set)
        flags = {"budget_secs": args.budget, "grace_secs": args.grace}
        if args.sandbox:
            flags["sandbox"] = args.sandbox
        cfg = config.load(ws, flags)
        work = workspace.copy_for_experiment(ws, Path(tmp) / "exp", code)
        run = run_experiment(ws, cfg, work, Path(tmp) / "out")
        log = run.log_path.read_text(errors="replace")
        device = next((x for x in log.splitlines() if x.startswith("device: ")), "no device line")
        epochs = EPOCHS.findall(log)
        printed = read_metrics(run.log_path, {GPU_MEMORY: pattern_for(GPU_MEMORY)})[0]
        source = f"from its {GPU_MEMORY} line" if printed else "no GPU line: the RSS"
        print(f"changes:        {', '.join(args.set) or 'none (the template as it is)'}")
        print(f"status:         {run.status}{f' ({run.reason})' if run.reason else ''}")
        print(f"{device}")
        print(f"val_accuracy:   {run.value}  (holdout {run.metrics.get('holdout_val_accuracy')})")
        print(f"epochs done:    {epochs[-1] if epochs else '?'}")
        print(f"train seconds:  {run.train_seconds:.1f} of a {args.budget:g} s budget")
        print(f"peak memory:    {run.peak_memory_mb} MB ({source})")
        if run.status != OK:
            print("log tail:\n" + "\n".join(log.splitlines()[-10:]))


if __name__ == "__main__":
    main()
