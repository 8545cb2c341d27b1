"""Fixed infrastructure for the Fashion-MNIST task. Agents never edit this file.

train.py uses:    load_data(), save_predictions(preds), time_left(), budget_seconds(), seed()
the orchestrator: ensure_data() before training, score(path) after it, in its own process;
                  training_files() and private_paths() to build the sandbox: train.py sees a
                  cache (AUTORESEARCH_CACHE_DIR) holding only the training files, and none of
                  the private paths (the raw files and the full cache, with the labels).

Only numpy and the standard library are imported here, so the orchestrator can
score without torch. Validation labels are never returned to train.py.

The 10,000 test images are split into a decision half (val_accuracy: what keeps or discards an
experiment) and a holdout half (holdout_val_accuracy: recorded, never shown to the agent, never
deciding), 500 of each class in each, by a permutation seeded from the labels themselves: train.py
predicts all 10,000 and cannot tell the halves apart. With AUTORESEARCH_HOLDOUT=0 (the config's
`holdout = false`) score() decides on all 10,000, as the original protocol did.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np

METRIC = "val_accuracy"
HOLDOUT_METRIC = "holdout_" + METRIC
DIRECTION = "maximize"
NUM_CLASSES = 10
NUM_VAL = 10_000
REQUIRED_MODULES = ("torch", "numpy")

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_URL = os.environ.get(
    "AUTORESEARCH_FASHION_MNIST_URL",
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
# md5 of the *decompressed* idx files: official and Debian gzip files both pass.
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "9018921c3c673c538a1fc5bad174d6f9"),
    "val_images": ("t10k-images-idx3-ubyte.gz", "8181f5470baa50b63fa0f6fddb340f0a"),
    "val_labels": ("t10k-labels-idx1-ubyte.gz", "15d484375f8d13e6eb1aabb0c3f46965"),
}
CACHE_VERSION = "v1"


class DataError(RuntimeError):
    """The data could not be found, downloaded or verified."""


def cache_dir() -> Path:
    root = os.environ.get("AUTORESEARCH_CACHE_DIR") or (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "autoresearch"
    )
    return Path(root) / "fashion-mnist"


def _candidate_dirs() -> list[tuple[str, Path]]:
    configured = os.environ.get("AUTORESEARCH_DATA_DIR")
    if configured:
        return [("data_dir / AUTORESEARCH_DATA_DIR", Path(configured).expanduser())]
    return [("Debian's dataset-fashion-mnist", DEBIAN_DIR), ("download cache", cache_dir() / "raw")]


def _has_all(directory: Path) -> bool:
    return all((directory / name).is_file() for name, _ in FILES.values())


def _download(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a read-only or unwritable cache: no place to download to
        raise DataError(f"cannot make {directory} to download into: {err}") from err
    for name, _ in FILES.values():
        target = directory / name
        if target.is_file():
            continue
        partial = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(DOWNLOAD_URL.rstrip("/") + "/" + name, timeout=30) as r:
                with open(partial, "wb") as out:
                    shutil.copyfileobj(r, out)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise DataError(f"download of {name} failed: {err}") from err
        partial.replace(target)


def _no_data_message(tried: list[str]) -> str:
    return (
        "Fashion-MNIST not found (tried " + "; ".join(tried) + "). Get it one of three ways: "
        "set data_dir in autoresearch.toml (or AUTORESEARCH_DATA_DIR) to a folder with the four "
        "official .gz files; `apt-get install dataset-fashion-mnist`; or go online once so it "
        f"downloads to {cache_dir() / 'raw'}."
    )


def find_raw_dir() -> Path:
    """The folder holding the four .gz files, downloading them as the last resort."""
    tried = []
    candidates = _candidate_dirs()
    for label, directory in candidates:
        if _has_all(directory):
            return directory
        tried.append(f"{label}: {directory}")
    label, directory = candidates[-1]
    if label == "download cache":
        try:
            _download(directory)
            return directory
        except DataError as err:
            tried.append(str(err))
    raise DataError(_no_data_message(tried))


def _read_idx(path: Path, expected_md5: str) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path} is not a readable gzip file ({err}); delete it and retry") from err
    digest = hashlib.md5(raw).hexdigest()
    if digest != expected_md5:
        raise DataError(
            f"{path} is corrupt: md5 of its content is {digest}, expected {expected_md5}; "
            "delete it and retry"
        )
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _cache_file(key: str) -> Path:
    return cache_dir() / CACHE_VERSION / f"{key}.npy"


def ensure_data() -> str:
    """Find, verify and convert the data once. Returns a one-line description."""
    if all(_cache_file(key).is_file() for key in FILES):
        return f"cached at {_cache_file('train_images').parent}"
    raw_dir = find_raw_dir()
    out = _cache_file("train_images").parent
    out.mkdir(parents=True, exist_ok=True)
    for key, (name, md5) in FILES.items():
        array = _read_idx(raw_dir / name, md5)
        tmp = out / f"{key}.tmp.npy"
        np.save(tmp, array)
        tmp.replace(_cache_file(key))
    return f"verified {raw_dir}, cached at {out}"


def _load(key: str) -> np.ndarray:
    if not _cache_file(key).is_file():
        ensure_data()
    return np.load(_cache_file(key))


TRAINING_KEYS = ("train_images", "train_labels", "val_images")


def training_files() -> dict[str, Path]:
    """What train.py may read, by its path under the cache folder it is given."""
    root = cache_dir().parent
    return {str(_cache_file(key).relative_to(root)): _cache_file(key) for key in TRAINING_KEYS}


def private_paths() -> list[Path]:
    """Where this task keeps what train.py must not read: the raw files and the full cache."""
    return [cache_dir(), DEBIAN_DIR, *(d for _, d in _candidate_dirs())]


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train images uint8 [60000,28,28], train labels [60000], val images [10000,28,28].

    The validation labels are not given: the orchestrator scores the predictions.
    """
    return _load("train_images"), _load("train_labels"), _load("val_images")


def budget_seconds() -> float:
    """The training budget in seconds, injected by the orchestrator."""
    return float(os.environ.get("TRAINING_BUDGET_SECS", "300"))


def seed() -> int:
    """This training run's seed, given by the orchestrator (a different one for each repeat)."""
    return int(os.environ.get("AUTORESEARCH_SEED", "0"))


def time_left() -> float:
    """Seconds left of the budget, counted from when the orchestrator started this process."""
    started = float(os.environ.get("AUTORESEARCH_START_TIME", _IMPORTED_AT))
    return budget_seconds() - (time.time() - started)


def save_predictions(preds) -> Path:
    """Save one predicted class index per validation image (10,000 of them)."""
    if hasattr(preds, "detach"):
        preds = preds.detach().cpu().numpy()
    array = np.asarray(preds)
    path = Path(os.environ.get("AUTORESEARCH_PREDICTIONS", "predictions.npy"))
    np.save(path, array, allow_pickle=False)
    return path


def score(predictions_path: str | os.PathLike) -> dict[str, float] | float:
    """Accuracy of the saved predictions against the validation labels: on the decision half and
    on the holdout half ({METRIC: ..., HOLDOUT_METRIC: ...}), or on all of them (one number)
    when AUTORESEARCH_HOLDOUT is "0".

    Raises ValueError with a one-line reason for anything that is not 10,000 class indices.
    """
    path = Path(predictions_path)
    if not path.is_file():
        raise ValueError("no predictions saved (train.py must call prepare.save_predictions)")
    try:
        preds = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a bad prediction
        raise ValueError(f"predictions file is not a readable .npy array: {err}") from err
    if preds.shape != (NUM_VAL,):
        raise ValueError(f"predictions must have shape ({NUM_VAL},), got {preds.shape}")
    if np.issubdtype(preds.dtype, np.floating) and np.isnan(preds).any():
        raise ValueError("predictions contain NaN")
    if not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(f"predictions must be integer class indices, got dtype {preds.dtype}")
    if preds.min() < 0 or preds.max() >= NUM_CLASSES:
        raise ValueError(
            f"predictions must be class indices in 0..{NUM_CLASSES - 1}, "
            f"got values from {preds.min()} to {preds.max()}"
        )
    correct = preds == load_labels()
    if os.environ.get("AUTORESEARCH_HOLDOUT", "1") == "0":
        return float(correct.mean())
    decision = decision_half()
    return {
        METRIC: float(correct[decision].mean()),
        HOLDOUT_METRIC: float(correct[~decision].mean()),
    }


@functools.cache
def decision_half() -> np.ndarray:
    """A fixed mask of the 5,000 images that decide (half of each class); the rest is the
    holdout. Seeded from the labels, which train.py never sees."""
    labels = load_labels()
    rng = np.random.default_rng(np.frombuffer(hashlib.sha256(labels.tobytes()).digest(), np.uint32))
    mask = np.zeros(len(labels), dtype=bool)
    for cls in range(NUM_CLASSES):
        members = np.flatnonzero(labels == cls)
        mask[rng.permutation(members)[: len(members) // 2]] = True
    return mask


@functools.cache
def load_labels() -> np.ndarray:
    """The validation labels, for score() only. The orchestrator loads them once, before any
    training, so a train.py that tampers with the cache on disk cannot change the score."""
    return _load("val_labels")


_IMPORTED_AT = time.time()
