"""Loading CIFAR-10: the shared image folder, subsets, the decode cache, bad folders and files, the bundled sample,
and torchvision's download path (exercised without a network)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_tui.core import data
from resnet_tui.core.data import CLASS_NAMES
from resnet_tui.core.errors import UserError

from cli_helpers import FOLDER_CLASSES, make_folder

@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESNET_TUI_CACHE", str(cache))
    return cache


@pytest.fixture
def no_network(monkeypatch):
    """Every URL open fails as it does offline; records what was asked for."""
    asked: list[str] = []

    def offline(req, *a, **k):
        asked.append(req.full_url if isinstance(req, urllib.request.Request) else str(req))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution (test: offline)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return asked


# ---------------------------------------------------------------- the shared image folder


def test_image_folder_labels_shapes_dtype_and_class_names(cifar_dir):
    split = data.load_image_folder(cifar_dir, "train", limit=200)
    assert split.images.shape == (200, 3, 32, 32)
    assert split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64 and split.labels.shape == (200,)
    assert split.classes == CLASS_NAMES == ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert split.class_counts() == [20] * 10  # class-balanced
    assert split.notices == []
    # real photos, not zeros: every image has contrast
    assert (split.images.flatten(1).float().std(1) > 5).all()


def test_pixels_and_labels_are_the_files(cifar_dir, tmp_path, own_cache):
    root = make_folder(cifar_dir, tmp_path / "small", classes=("airplane", "cat", "truck"), n_train=3, n_test=2)
    split = data.load_image_folder(root, "train")
    assert split.classes == ("plane", "cat", "truck")
    files = [(cls, f) for cls in ("airplane", "cat", "truck") for f in sorted((root / "train" / cls).iterdir())]
    assert len(split) == len(files) == 9
    for i, (cls, f) in enumerate(files):
        expected = np.array(Image.open(f).convert("RGB")).transpose(2, 0, 1).copy()
        assert torch.equal(split.images[i], torch.from_numpy(expected)), f
        assert int(split.labels[i]) == ("airplane", "cat", "truck").index(cls)


def test_normalize_is_the_labs_transform_and_spans_minus_one_to_one(cifar_dir, tmp_path, own_cache):
    import torchvision.transforms as T

    assert data.normalize(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]
    root = make_folder(cifar_dir, tmp_path / "small", classes=("bird", "ship"), n_train=3, n_test=1)
    split = data.load_image_folder(root, "train")
    x = data.normalize(split.images)
    assert x.dtype == torch.float32 and x.min() >= -1.0 and x.max() <= 1.0
    assert x.min() < -0.9 and x.max() > 0.9  # the range is used, not squashed
    # the lab: ToTensor() then Normalize((0.5,)*3, (0.5,)*3) on the PIL image
    lab = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    first = sorted((root / "train" / "bird").iterdir())[0]
    torch.testing.assert_close(x[0], lab(Image.open(first).convert("RGB")), rtol=0, atol=1e-6)


def test_limit_gives_deterministic_class_balanced_subsets(cifar_dir):
    a = data.load_image_folder(cifar_dir, "test", limit=105)
    b = data.load_image_folder(cifar_dir, "test", limit=105)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    counts = a.class_counts()
    assert sum(counts) == 105 and min(counts) >= 10 and max(counts) <= 11
    c = data.load_image_folder(cifar_dir, "test", limit=20)
    assert c.class_counts() == [2] * 10
    # the subset is spread over each class, not its first files
    idx = data.balanced_indices(np.repeat(np.arange(10), 1000), 100, 10)
    assert len(set(idx.tolist())) == 100
    assert max(idx[idx < 1000]) > 500


def test_decode_cache_is_hit_and_invalidated_by_a_touched_file(cifar_dir, tmp_path, own_cache, monkeypatch):
    root = make_folder(cifar_dir, tmp_path / "small", classes=("dog", "frog"), n_train=3, n_test=1)
    calls: list[int] = []
    real = data._decode_files

    def counting(read, names):
        calls.append(len(names))
        return real(read, names)

    monkeypatch.setattr(data, "_decode_files", counting)
    first = data.load_image_folder(root, "train")
    assert calls == [6]
    assert list((own_cache / "decoded").glob("*.npz")), "the decoded split is cached"
    second = data.load_image_folder(root, "train")
    assert calls == [6], "the second load comes from the cache"
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.classes == second.classes

    # a file changed on disk (new mtime) invalidates the cache
    f = sorted((root / "train" / "dog").iterdir())[0]
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    data.load_image_folder(root, "train")
    assert calls == [6, 6]

    # a damaged cache file is rebuilt, not trusted
    for p in (own_cache / "decoded").glob("*.npz"):
        p.write_bytes(b"garbage")
    again = data.load_image_folder(root, "train")
    assert calls == [6, 6, 6]
    assert torch.equal(again.images, first.images)


def test_train_and_test_with_different_classes_is_one_clear_error(cifar_dir, tmp_path):
    root = make_folder(cifar_dir, tmp_path / "odd", classes=("cat", "dog"), n_train=1, n_test=1)
    shutil.rmtree(root / "test" / "dog")
    (root / "test" / "frog").mkdir()
    shutil.copy2(sorted((cifar_dir / "test" / "frog").iterdir())[0], root / "test" / "frog" / "0001.jpg")
    with pytest.raises(UserError) as e:
        data.load_data(str(root))
    msg = str(e.value)
    assert "\n" not in msg and "different classes" in msg
    assert "only in train: dog" in msg and "only in test: frog" in msg


def test_missing_folder_and_folder_without_splits(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.resolve_source(str(tmp_path / "nope"))
    (tmp_path / "flat" / "cat").mkdir(parents=True)
    with pytest.raises(UserError, match="train/ and test/"):
        data.resolve_source(str(tmp_path / "flat"))


def test_corrupt_and_non_image_files_are_skipped_with_a_notice_naming_them(cifar_dir, tmp_path, own_cache):
    root = make_folder(cifar_dir, tmp_path / "messy", classes=("horse", "ship"), n_train=3, n_test=1)
    (root / "train" / "horse" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "ship" / "notes.txt").write_text("photographer: unknown\n")
    good = sorted((root / "train" / "ship").glob("*.jpg"))[0].read_bytes()
    (root / "train" / "ship" / "truncated.jpg").write_bytes(good[: len(good) // 3])

    split = data.load_image_folder(root, "train")
    names = " | ".join(split.notices)
    assert "horse/broken.jpg" in names and "ship/notes.txt" in names
    assert all("skipped" in n and "not a readable image" in n for n in split.notices)
    assert split.class_counts() == [3, 3 + ("ship/truncated.jpg" not in names)]
    # the notices survive a cache hit
    assert data.load_image_folder(root, "train").notices == split.notices


# ---------------------------------------------------------------- the bundled sample and the offline fallback


def test_bundled_sample_loads():
    train = data.load_sample("train")
    test = data.load_sample("test")
    assert train.images.shape == (3000, 3, 32, 32) and test.images.shape == (1000, 3, 32, 32)
    assert train.classes == test.classes == CLASS_NAMES
    assert train.class_counts() == [300] * 10 and test.class_counts() == [100] * 10
    assert any("bundled CIFAR-10 sample" in n for n in train.notices)
    small = data.load_sample("train", limit=50)
    assert small.class_counts() == [5] * 10


def test_auto_without_network_falls_back_to_the_sample_with_a_notice(tmp_path, own_cache, no_network):
    empty = tmp_path / "no-cifar-here"
    assert data.resolve_source("auto", str(empty)) == ("sample", True)
    assert any("cifar-10-python.tar.gz" in u for u in no_network), "the real download code ran and asked for the archive"
    train, test = data.load_data("auto", str(empty), limit_train=30, limit_eval=20)
    assert len(train) == 30 and len(test) == 20
    notice = [n for n in train.notices if "bundled CIFAR-10 sample" in n]
    assert notice and "neither on disk nor downloadable" in notice[0]


def test_cifar10_offline_is_a_one_line_user_error(tmp_path, own_cache, no_network):
    with pytest.raises(UserError) as e:
        data.load_cifar10("train", str(tmp_path / "dl"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--data: cifar10 could not be loaded")
    assert "--data sample" in msg
    assert no_network


# ---------------------------------------------------------------- torchvision's download, served from a local archive


def _fake_cifar10_archive(cifar_dir: Path, dest: Path, per_class: int = 2):
    """A CIFAR-10 python archive in torchvision's format, made of real images: 5 train batches and a test batch."""
    batches: dict[str, bytes] = {}
    expected: dict[str, tuple[np.ndarray, list[int]]] = {}
    listing = {(split, cls): sorted((cifar_dir / split / cls).iterdir()) for split in ("train", "test") for cls in FOLDER_CLASSES}
    for name, split, offset in [(f"data_batch_{i}", "train", i * per_class) for i in range(1, 6)] + [("test_batch", "test", 0)]:
        rows, labels = [], []
        for label, cls in enumerate(FOLDER_CLASSES):
            for f in listing[split, cls][offset : offset + per_class]:
                hwc = np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8)
                rows.append(hwc.transpose(2, 0, 1).reshape(-1))
                labels.append(label)
        batches[name] = pickle.dumps({"batch_label": name, "labels": labels, "data": np.stack(rows)})
        expected[name] = (np.stack(rows).reshape(-1, 3, 32, 32), labels)
    batches["batches.meta"] = pickle.dumps({"label_names": list(FOLDER_CLASSES), "num_vis": 3072})
    tgz = dest / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, blob in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    md5 = {name: hashlib.md5(blob).hexdigest() for name, blob in batches.items()}
    return tgz, md5, expected


@pytest.fixture
def local_cifar10(cifar_dir, tmp_path, monkeypatch):
    """torchvision's CIFAR10 pointed at an archive served over HTTP from 127.0.0.1 (file:// responses lack a length)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from torchvision.datasets import CIFAR10

    served = tmp_path / "served"
    served.mkdir()
    tgz, md5, expected = _fake_cifar10_archive(cifar_dir, served)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # torchvision's redirect probe closes its connection early

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_address[1]}/{tgz.name}")
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(tgz.read_bytes()).hexdigest())
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]})
    yield tmp_path / "downloaded", expected
    server.shutdown()
    server.server_close()


def test_cifar10_download_with_integrity_check_then_used_offline(local_cifar10, own_cache, monkeypatch):
    root, expected = local_cifar10
    assert not data.cifar10_present(str(root))
    train = data.load_cifar10("train", str(root))  # torchvision downloads (file://), checks md5, extracts
    assert (root / "cifar-10-python.tar.gz").exists() and (root / "cifar-10-batches-py" / "test_batch").exists()
    assert train.classes == CLASS_NAMES and train.notices == []
    assert train.images.shape == (100, 3, 32, 32) and train.images.dtype == torch.uint8
    want = np.concatenate([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(train.images.numpy(), want)
    assert train.class_counts() == [10] * 10
    assert data.cifar10_present(str(root))

    # already present and intact: no network needed, auto picks it, and both splits load
    asked: list[str] = []

    def offline(req, *a, **k):
        asked.append(str(getattr(req, "full_url", req)))
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert data.resolve_source("auto", str(root)) == ("cifar10", False)
    tr, te = data.load_data("auto", str(root), limit_train=40)
    assert asked == []
    assert len(tr) == 40 and tr.class_counts() == [4] * 10
    assert np.array_equal(te.images.numpy(), expected["test_batch"][0])
    assert te.labels.tolist() == expected["test_batch"][1]


def test_cifar10_download_that_fails_the_integrity_check_is_a_user_error(local_cifar10, own_cache, monkeypatch):
    from torchvision.datasets import CIFAR10

    root, _ = local_cifar10
    monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)
    with pytest.raises(UserError) as e:
        data.load_cifar10("train", str(root))
    assert "\n" not in str(e.value) and "corrupted" in str(e.value)
    # and auto then falls back to the sample rather than train on a bad download
    assert data.resolve_source("auto", str(root)) == ("sample", True)


def test_auto_falls_back_when_the_network_never_answers(tmp_path, own_cache, monkeypatch):
    """A network that accepts connections and then stays silent (a proxy, a firewall) must not hang `auto`:
    the download gives up after data.DOWNLOAD_TIMEOUT seconds and the sample is used."""
    import socket
    import time

    from torchvision.datasets import CIFAR10

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
    try:
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{silent.getsockname()[1]}/cifar-10-python.tar.gz")
        monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 1.0)
        before = socket.getdefaulttimeout()
        t0 = time.monotonic()
        result: list = []
        import threading

        worker = threading.Thread(target=lambda: result.append(data.resolve_source("auto", str(tmp_path / "dl"))), daemon=True)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "resolve_source('auto') hung on a silent network"
        assert result == [("sample", True)]
        assert time.monotonic() - t0 < 30
        assert socket.getdefaulttimeout() == before  # the process-wide default is restored
    finally:
        silent.close()
