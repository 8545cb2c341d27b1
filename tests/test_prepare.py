"""The Fashion-MNIST prepare.py: finding, downloading, verifying and caching the data."""

import gzip
import http.server
import shutil
import threading
import time
from functools import partial

import numpy as np
import pytest
from conftest import DATA_DIR

from autoresearch.training import task


@pytest.fixture
def prepare(ws, tmp_path, monkeypatch):
    """The workspace's prepare.py with no data anywhere: no data_dir, no Debian, empty cache."""
    monkeypatch.delenv("AUTORESEARCH_DATA_DIR")
    monkeypatch.setenv("AUTORESEARCH_CACHE_DIR", str(tmp_path / "cache"))
    module = task.load_prepare(ws)
    monkeypatch.setattr(module, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(module, "DOWNLOAD_URL", "http://127.0.0.1:9/")  # nothing listens there
    return module


@pytest.fixture
def http_dir(tmp_path):
    """A local HTTP server over a folder; yields (folder, base url, list of requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_port}/", requested
    server.shutdown()


def test_no_data_anywhere_names_the_three_ways(prepare):
    with pytest.raises(prepare.DataError) as err:
        prepare.ensure_data()
    message = str(err.value)
    assert "data_dir" in message and "AUTORESEARCH_DATA_DIR" in message
    assert "apt-get install dataset-fashion-mnist" in message and "download" in message


def test_a_cache_folder_that_cannot_be_made_is_the_same_clear_message(prepare, tmp_path):
    # As on a Ray node whose cache path runs through a file (or a read-only place): the
    # download has nowhere to go, which is the "no data" message, not a raw FileExistsError.
    (tmp_path / "blocked").write_text("a file where the cache's folder would be")
    prepare.cache_dir = lambda: tmp_path / "blocked" / "fashion-mnist"
    with pytest.raises(prepare.DataError) as err:
        prepare.ensure_data()
    assert "cannot make" in str(err.value) and "apt-get install dataset-fashion-mnist" in str(
        err.value
    )


def test_debian_folder_is_used_when_nothing_is_configured(prepare, tmp_path):
    debian = tmp_path / "debian"
    shutil.copytree(DATA_DIR, debian)
    prepare.DEBIAN_DIR = debian
    assert str(debian) in prepare.ensure_data()
    x_train, y_train, x_val = prepare.load_data()
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_val.shape == (10000, 28, 28) and x_train.dtype == np.uint8


def test_debian_style_gzip_headers_pass_verification(prepare, tmp_path):
    """Debian drops the file name and changes the mtime: same content, other bytes."""
    debian = tmp_path / "debian"
    debian.mkdir()
    for f in DATA_DIR.glob("*.gz"):
        (debian / f.name).write_bytes(gzip.compress(gzip.decompress(f.read_bytes()), mtime=0))
        assert (debian / f.name).read_bytes() != f.read_bytes()
    prepare.DEBIAN_DIR = debian
    assert "verified" in prepare.ensure_data()


def test_download_from_a_server_when_online(prepare, http_dir):
    folder, url, requested = http_dir
    for f in DATA_DIR.glob("*.gz"):
        shutil.copy(f, folder / f.name)
    prepare.DOWNLOAD_URL = url
    assert "verified" in prepare.ensure_data()
    assert len(requested) == 4
    assert (prepare.cache_dir() / "raw" / "train-images-idx3-ubyte.gz").is_file()
    prepare.ensure_data()  # cached now: nothing downloaded again
    assert len(requested) == 4


def test_corrupt_download_is_rejected_with_a_clear_message(prepare, http_dir):
    folder, url, _ = http_dir
    for f in DATA_DIR.glob("*.gz"):
        shutil.copy(f, folder / f.name)
    labels = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    broken = labels[:-1] + bytes([(labels[-1] + 1) % 10])
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(broken))
    prepare.DOWNLOAD_URL = url
    with pytest.raises(prepare.DataError, match="t10k-labels-idx1-ubyte.gz is corrupt: md5"):
        prepare.ensure_data()


def test_truncated_gzip_is_rejected(prepare, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(DATA_DIR, bad)
    data = (bad / "train-labels-idx1-ubyte.gz").read_bytes()
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])
    prepare.DEBIAN_DIR = bad
    with pytest.raises(prepare.DataError, match="not a readable gzip file"):
        prepare.ensure_data()


def test_train_py_gets_validation_images_but_never_their_labels(ws):
    prepare = task.load_prepare(ws)
    loaded = prepare.load_data()
    assert len(loaded) == 3 and loaded[2].shape == (10000, 28, 28)
    assert not any(name for name in dir(prepare) if "label" in name.lower() and "val" in name)


def test_budget_and_time_left_come_from_the_environment(ws, monkeypatch):
    monkeypatch.setenv("TRAINING_BUDGET_SECS", "42")
    monkeypatch.setenv("AUTORESEARCH_START_TIME", str(time.time() - 2))
    prepare = task.load_prepare(ws)
    assert prepare.budget_seconds() == 42
    assert 39 < prepare.time_left() <= 40.1
