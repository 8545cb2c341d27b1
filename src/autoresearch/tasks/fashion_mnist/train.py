"""Fashion-MNIST classifier: the file the research agent edits.

The starting point is deliberately weak: one linear layer, SGD lr=0.1, batch 32,
pixels scaled to [0, 1], no normalization. Training reads the clock every batch and stops when
only the time to predict (measured) is left of the budget, then saves predictions.

It trains on an NVIDIA GPU (CUDA) when there is one, else on Apple's MPS, else on the CPU, and
says which in its log. On CUDA it ends with `peak_vram_mb: ...`, the peak GPU memory, which
autoresearch reports as results.tsv's memory_gb (without the line: the process's peak RSS).
"""

import os
import sys
import time

import numpy as np
import prepare
import torch
import torch.nn.functional as F

# --- hyperparameters (autoresearch: hpo) ---
LEARNING_RATE = 0.1  # float[1e-4, 1.0] log
BATCH_SIZE = 32  # int[16, 1024] log
OPTIMIZER = "sgd"  # choice["sgd", "adam", "adamw"]
MOMENTUM = 0.0  # float[0.0, 0.99]
WEIGHT_DECAY = 0.0  # float[0.0, 0.01]
HIDDEN_UNITS = 0  # choice[0, 128, 256, 512]
LABEL_SMOOTHING = 0.0  # float[0.0, 0.2]
LR_SCHEDULE = "constant"  # choice["constant", "cosine"]
NORMALIZE = False  # choice[False, True]
# --- end hyperparameters ---

MEAN, STD = 0.2860, 0.3530


def build_model() -> torch.nn.Module:
    if HIDDEN_UNITS == 0:
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(28 * 28, HIDDEN_UNITS),
        torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN_UNITS, 10),
    )


def build_optimizer(params):
    if OPTIMIZER == "adam":
        return torch.optim.Adam(params, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    if OPTIMIZER == "adamw":
        return torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    return torch.optim.SGD(params, lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    # torch takes its CPU thread count from OMP_NUM_THREADS ([resources] threads) when it is set.
    return f"device: {device.type}{name}; torch threads: {torch.get_num_threads()}"


def to_tensor(images, device: torch.device) -> torch.Tensor:
    # The whole data set fits on any GPU: it moves there once (as bytes, a quarter of the floats),
    # so batches never cross the bus.
    x = torch.from_numpy(images).to(device).float().div_(255.0)
    return (x - MEAN) / STD if NORMALIZE else x


def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    model.train()
    return preds.cpu()  # on a GPU: waits until it is done


def predicting_seconds(model: torch.nn.Module, x_val: torch.Tensor) -> float:
    """Timed on a tenth of the images, doubled, + 0.5 s to save and exit."""
    predict(model, x_val[:10])  # the first call sets up (on a GPU: its libraries)
    started = time.time()
    predict(model, x_val[: len(x_val) // 10])
    return 20 * (time.time() - started) + 0.5


def main() -> None:
    # Each run gets its own seed from the orchestrator: repeats measure the noise, and the same
    # seed reproduces a run.
    torch.manual_seed(prepare.seed())
    np.random.seed(prepare.seed())
    device = pick_device()
    print(describe(device), flush=True)
    x_train_np, y_train_np, x_val_np = prepare.load_data()
    x_train = to_tensor(x_train_np, device)
    y_train = torch.from_numpy(y_train_np).long().to(device)
    x_val = to_tensor(x_val_np, device)

    model = build_model().to(device)
    optimizer = build_optimizer(model.parameters())
    # The number of epochs is not known in advance; the cosine schedule assumes ~10.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    n = len(x_train)
    reserve = predicting_seconds(model, x_val)  # kept out of the training time
    ready = prepare.budget_seconds() - prepare.time_left()
    epoch, out_of_time = 0, False
    # Until the budget less the reserve runs out: the last epoch may stop part way.
    print(f"training: {n} images an epoch, batches of {BATCH_SIZE}", flush=True)
    while not out_of_time:
        started = time.time()
        order = torch.randperm(n).to(device)  # drawn on the CPU: the same order on any device
        losses = []  # summed at the epoch's end: no wait for the GPU at every batch
        for i in range(0, n, BATCH_SIZE):
            if prepare.time_left() <= reserve:
                out_of_time = True
                break
            idx = order[i : i + BATCH_SIZE]
            loss = F.cross_entropy(
                model(x_train[idx]), y_train[idx], label_smoothing=LABEL_SMOOTHING
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach() * len(idx))
        if losses:
            seen = min(len(losses) * BATCH_SIZE, n)
            total = torch.stack(losses).sum().item()  # waits for the device
            part = f", {seen / n:.0%} of it: out of time" if out_of_time else ""
            took = time.time() - started
            print(f"epoch {epoch + 1} loss {total / seen:.4f} ({took:.1f}s{part})", flush=True)
        if out_of_time:
            if epoch == 0:
                budget = prepare.budget_seconds()
                print(
                    f"budget: {budget:g} s is less than one epoch (training began at {ready:.1f} s)"
                )
            break
        epoch += 1
        if LR_SCHEDULE == "cosine":
            scheduler.step()

    prepare.save_predictions(predict(model, x_val))
    print(f"whole epochs trained: {epoch}; predictions saved")
    if device.type == "cuda":  # what results.tsv's memory_gb reports
        print(f"peak_vram_mb: {torch.cuda.max_memory_allocated(device) / 2**20:.1f}")
    sys.stdout.flush()
    os._exit(0)  # at once: tearing torch down takes a second of the budget on a small CPU


if __name__ == "__main__":
    main()
