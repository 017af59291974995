"""CIFAR-10 as uint8 tensors: from torchvision's download, from an image folder, or from the bundled sample.

The whole split is held as one uint8 tensor [N, 3, 32, 32]; `DeviceBatches` moves it to the training
device once and does normalisation, shuffling and augmentation there, per batch.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from resnet_tui.core.errors import UserError

# The lab's display names, in CIFAR-10's label order.
CLASS_NAMES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Folder names (torchvision / the shared JPEG set) that map onto those display names.
_FOLDER_ALIASES = {"airplane": "plane", "automobile": "car"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SAMPLE_NAME = "cifar10-sample.zip"
# torchvision's download has no timeout: a network that accepts and never answers would hang `--data auto` for good
DOWNLOAD_TIMEOUT = 30.0
# Normalisation of the lab: ToTensor() then Normalize((0.5,)*3, (0.5,)*3)
MEAN, STD = 0.5, 0.5


def cache_dir() -> Path:
    """Where downloads and decoded arrays live. RESNET_TUI_CACHE overrides the user cache dir."""
    env = os.environ.get("RESNET_TUI_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("resnet-tui"))


@dataclass
class Split:
    """One split of a data set: uint8 images [N, 3, 32, 32] and int64 labels [N], on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str  # human-readable origin, e.g. "CIFAR-10 (torchvision)" or a folder path
    notices: list[str] = field(default_factory=list)  # things the user should see (sample in use, skipped files)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()

    def subset(self, indices: np.ndarray | list[int]) -> "Split":
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return Split(self.images[idx], self.labels[idx], self.classes, self.source, list(self.notices))


def balanced_indices(labels: np.ndarray, limit: int | None, num_classes: int) -> np.ndarray:
    """A deterministic, class-balanced subset of `limit` indices (all when limit is None or too large), sorted."""
    labels = np.asarray(labels)
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(0)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]
    # round-robin over classes, so any prefix is as balanced as the data allows
    depth = max((len(p) for p in per_class), default=0)
    order = [p[i] for i in range(depth) for p in per_class if i < len(p)]
    return np.sort(np.asarray(order[:limit], dtype=np.int64))


# ---------------------------------------------------------------- image folders


def _display_name(folder: str) -> str:
    return _FOLDER_ALIASES.get(folder.lower(), folder)


def _reason(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _class_folders(split_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The readable class folders of a split, sorted, and {name: why} for entries that cannot be read (a symlink loop,
    no permission): those are skipped, not fatal."""
    try:
        with os.scandir(split_dir) as it:
            entries = [e for e in it if not e.name.startswith(".")]
    except OSError as e:
        raise UserError(f"--data: cannot read {str(split_dir)!r} ({_reason(e)}), expected a readable folder of class folders") from None
    classes, unreadable = [], {}
    for e in entries:
        try:
            if not e.is_dir():
                continue
            with os.scandir(e.path):  # readable? (chmod 000 fails here, unless we are root)
                pass
        except OSError as err:
            unreadable[e.name] = _reason(err)
            continue
        classes.append(e.name)
    return sorted(classes), unreadable


def _layout(root: str | Path) -> tuple[Path, list[str], list[str]]:
    """(root, the classes readable in both train/ and test/, notices naming what was skipped)."""
    path = Path(root).expanduser()
    if not path.exists():
        raise UserError(f"--data: got {str(root)!r}, expected auto, cifar10, sample or an existing folder (it does not exist)")
    if not path.is_dir() or not (path / "train").is_dir() or not (path / "test").is_dir():
        raise UserError(f"--data: got {str(root)!r}, expected a folder with train/ and test/ subfolders, one folder per class")
    train_classes, train_skipped = _class_folders(path / "train")
    test_classes, test_skipped = _class_folders(path / "test")
    skipped = {**test_skipped, **train_skipped}
    notices = [f"skipped {split}/{name}: cannot read it ({why}); {name} is left out of train/ and test/"
               for split, table in (("train", train_skipped), ("test", test_skipped)) for name, why in sorted(table.items())]
    train_classes = [c for c in train_classes if c not in skipped]
    test_classes = [c for c in test_classes if c not in skipped]
    if not train_classes:
        found = f" (unreadable: {', '.join(sorted(skipped))})" if skipped else ""
        raise UserError(f"--data: {str(path / 'train')!r} has no readable class folders{found}")
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise UserError(
            f"--data: train/ and test/ of {str(root)!r} have different classes "
            f"(only in train: {', '.join(only_train) or '-'}; only in test: {', '.join(only_test) or '-'})"
        )
    return path, train_classes, notices


def _list_files(split_dir: Path, classes: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """("class/file", label) for the files of each class folder, and a notice for each entry that cannot be read."""
    files: list[tuple[str, int]] = []
    notices: list[str] = []
    for label, cls in enumerate(classes):
        try:
            with os.scandir(split_dir / cls) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:  # readable a moment ago
            notices.append(f"skipped {split_dir.name}/{cls}: cannot read it ({_reason(e)})")
            continue
        for e in entries:
            try:
                if e.is_file():
                    files.append((f"{cls}/{e.name}", label))
            except OSError as err:  # a symlink loop
                notices.append(f"skipped {split_dir.name}/{cls}/{e.name}: cannot read it ({_reason(err)})")
    return files, notices


def check_image_folder(root: str | Path) -> tuple[Path, list[str]]:
    """Validate the layout: root/train and root/test with the same (readable) class folders. Returns (root, classes)."""
    path, classes, _ = _layout(root)
    return path, classes


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (32, 32):
            im = im.resize((32, 32), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _decode_files(read, names: list[str]) -> tuple[np.ndarray, list[int], list[str]]:
    """Decode `names` with `read(name) -> bytes`. Returns HWC uint8 images, kept positions, and skipped-file notices."""
    out = np.empty((len(names), 32, 32, 3), dtype=np.uint8)
    kept: list[int] = []
    notices: list[str] = []
    for i, name in enumerate(names):
        try:
            out[len(kept)] = _decode(read(name))
            kept.append(i)
        except Exception as e:  # PIL raises many types for bad files; each one is skipped and named
            notices.append(f"skipped {name}: not a readable image ({type(e).__name__})")
    return out[: len(kept)], kept, notices


def _to_split(hwc: np.ndarray, labels: list[int], classes: tuple[str, ...], source: str, notices: list[str]) -> Split:
    images = torch.from_numpy(np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)))
    return Split(images, torch.tensor(labels, dtype=torch.int64), classes, source, notices)


def load_image_folder(root: str | Path, split: str, limit: int | None = None) -> Split:
    path, classes, skipped = _layout(root)
    split_dir = path / split
    files, unreadable = _list_files(split_dir, classes)
    skipped += unreadable
    labels = np.array([label for _, label in files], dtype=np.int64)
    chosen = balanced_indices(labels, limit, len(classes))
    names = [files[i][0] for i in chosen]
    display = tuple(_display_name(c) for c in classes)

    # Cache key: the classes (labels are their positions) and every chosen file's name, size and mtime,
    # so any change on disk invalidates it.
    h = hashlib.sha256(str(split_dir.resolve()).encode() + b"\0" + "\0".join(classes).encode() + b"\n")
    for n in names:
        st = (split_dir / n).stat()
        h.update(f"{n}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cache = cache_dir() / "decoded" / f"{h.hexdigest()[:32]}.npz"
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                notices = [str(s) for s in z["notices"]]
                return _to_split(z["images"], z["labels"].tolist(), display, str(path), skipped + notices)
        except Exception:
            pass  # a damaged cache file is rebuilt below

    hwc, kept, notices = _decode_files(lambda n: (split_dir / n).read_bytes(), names)
    kept_labels = [int(labels[chosen[i]]) for i in kept]
    if not kept:
        raise UserError(f"--data: {str(split_dir)!r} contains no readable images")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, images=hwc, labels=np.array(kept_labels), notices=np.array(notices, dtype=str))
        os.replace(tmp, cache)
    except OSError:
        pass  # caching is an optimisation; a read-only cache dir must not stop training
    return _to_split(hwc, kept_labels, display, str(path), skipped + notices)


# ---------------------------------------------------------------- bundled sample


def sample_path() -> Path:
    """The bundled sample: inside the installed package, or in the source tree's assets/."""
    package = Path(__file__).resolve().parents[1]  # resnet_tui/
    for candidate in (package / "assets" / SAMPLE_NAME, package.parent / "assets" / SAMPLE_NAME):
        if candidate.exists():
            return candidate
    raise UserError(f"--data: the bundled sample {SAMPLE_NAME} is missing from this installation")


def load_sample(split: str, limit: int | None = None, fallback: bool = False) -> Split:
    path = sample_path()
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.startswith(split + "/") and n.lower().endswith(IMAGE_SUFFIXES))
        folders = sorted({n.split("/")[1] for n in names})
        labels = np.array([folders.index(n.split("/")[1]) for n in names], dtype=np.int64)
        chosen = balanced_indices(labels, limit, len(folders))
        hwc, kept, notices = _decode_files(z.read, [names[i] for i in chosen])
    kept_labels = [int(labels[chosen[i]]) for i in kept]
    notice = f"using the bundled CIFAR-10 sample ({path.name}: 3,000 training and 1,000 test images)"
    if fallback:
        notice += ", because CIFAR-10 is neither on disk nor downloadable"
    return _to_split(hwc, kept_labels, tuple(_display_name(f) for f in folders), f"bundled sample ({path.name})", [notice, *notices])


# ---------------------------------------------------------------- torchvision CIFAR-10


def cifar10_root(data_dir: str | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else cache_dir() / "cifar10"


def cifar10_present(data_dir: str | None) -> bool:
    from torchvision.datasets import CIFAR10

    ds = CIFAR10.__new__(CIFAR10)
    ds.root = str(cifar10_root(data_dir))
    return ds._check_integrity()


def load_cifar10(split: str, data_dir: str | None, limit: int | None = None, download: bool = True) -> Split:
    """torchvision's CIFAR-10, downloaded with its integrity check into `data_dir`."""
    from torchvision.datasets import CIFAR10

    root = cifar10_root(data_dir)
    previous_timeout = socket.getdefaulttimeout()
    try:
        root.mkdir(parents=True, exist_ok=True)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # per connect/read, so a slow but live download still completes
        ds = CIFAR10(root=str(root), train=(split == "train"), download=download)
    except (OSError, RuntimeError) as e:
        # urllib's URLError and socket timeouts are OSErrors; torchvision raises RuntimeError on a failed integrity check
        raise UserError(f"--data: cifar10 could not be loaded into {str(root)!r} ({e}); offline, use --data sample or an image-folder path") from None
    finally:
        socket.setdefaulttimeout(previous_timeout)
    labels = np.asarray(ds.targets, dtype=np.int64)
    chosen = balanced_indices(labels, limit, 10)
    return _to_split(ds.data[chosen], labels[chosen].tolist(), CLASS_NAMES, f"CIFAR-10 ({root})", [])


def resolve_source(data: str, data_dir: str | None = None) -> tuple[str, bool]:
    """Decide once where `data` comes from: ("cifar10" | "sample" | folder path, fell_back_to_sample).

    auto means CIFAR-10 if it is on disk or can be downloaded (with torchvision's integrity check), else the bundled sample.
    """
    if data == "auto":
        if cifar10_present(data_dir):
            return "cifar10", False
        try:
            load_cifar10("test", data_dir, limit=1, download=True)  # downloads the archive that holds both splits
            return "cifar10", False
        except UserError:
            return "sample", True
    if data not in ("cifar10", "sample"):
        check_image_folder(data)  # one clear error before any decoding
    return data, False


def load_split(data: str, split: str, data_dir: str | None = None, limit: int | None = None, fallback: bool = False) -> Split:
    """Load one split ("train" or "test") of `data`: auto, cifar10, sample or an image-folder path."""
    if split not in ("train", "test"):
        raise ValueError(split)
    if data == "auto":
        data, fallback = resolve_source(data, data_dir)
    if data == "sample":
        return load_sample(split, limit, fallback)
    if data == "cifar10":
        return load_cifar10(split, data_dir, limit)
    return load_image_folder(data, split, limit)


def load_data(data: str, data_dir: str | None = None, limit_train: int | None = None, limit_eval: int | None = None) -> tuple[Split, Split]:
    source, fallback = resolve_source(data, data_dir)
    train = load_split(source, "train", data_dir, limit_train, fallback)
    test = load_split(source, "test", data_dir, limit_eval, fallback)
    if train.classes != test.classes:
        raise UserError(f"--data: train and test have different classes ({', '.join(train.classes)} vs {', '.join(test.classes)})")
    return train, test


# ---------------------------------------------------------------- on-device batches


def normalize(images_u8: torch.Tensor) -> torch.Tensor:
    """The lab's ToTensor() + Normalize(0.5, 0.5), as the same float32 operations, on any device."""
    return (images_u8.float() / 255.0 - MEAN) / STD


def translate_and_flip(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Per-sample random translate (zero padding, up to `pad` pixels) and horizontal flip, vectorised.

    x: [B, C, H, W] float; shifts: [B, 2] int in [-pad, pad]; flips: [B] bool.
    """
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = (shifts[:, 0] + pad)[:, None] + ar_h  # [B, H]
    cols = (shifts[:, 1] + pad)[:, None] + ar_w  # [B, W]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=x.device)[:, None, None]
    out = padded[bi, :, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Data order and augmentation of an epoch depend only on (seed, epoch), so a resumed run replays them exactly."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _slice(start: int, length: int, rank: int, world: int) -> tuple[int, int]:
    """[lo, hi) of rank's slice of the batch [start, start + length), as torch.tensor_split splits it."""
    q, r = divmod(length, world)
    lo = start + rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


class DeviceBatches:
    """A split resident on the training device as uint8; batches are normalised (and augmented) there."""

    def __init__(self, split: Split, device: torch.device, channels_last: bool = True):
        self.device = device
        self.images = split.images.to(device)
        self.labels = split.labels.to(device)
        self.n = len(split)
        self.channels_last = channels_last

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return self.n // batch_size if drop_last else -(-self.n // batch_size)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def batch_length(self, b: int, batch_size: int) -> int:
        """Images in global batch b (the last one may be smaller)."""
        return min(batch_size, self.n - b * batch_size)

    def train_epoch(
        self, epoch: int, batch_size: int, seed: int, augment: bool, drop_last: bool = False, start_batch: int = 0,
        part: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches of epoch `epoch` (counted from 0), from batch `start_batch` on. part=(rank, world): this
        rank's slice of each batch (the first `len % world` slices are one image longer); the shuffle and the
        augmentation are the whole batch's, whatever the world size."""
        g = epoch_generator(seed, epoch)
        perm = torch.randperm(self.n, generator=g)
        if augment:
            shifts = torch.randint(-4, 5, (self.n, 2), generator=g).to(self.device)
            flips = (torch.rand(self.n, generator=g) < 0.5).to(self.device)
        perm = perm.to(self.device)
        for b in range(start_batch, self.num_batches(batch_size, drop_last)):
            lo, hi = _slice(b * batch_size, self.batch_length(b, batch_size), *part)
            idx = perm[lo:hi]
            x = normalize(self.images[idx])
            if augment:
                x = translate_and_flip(x, shifts[lo:hi], flips[lo:hi])
            yield self._prepare(x), self.labels[idx]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.n, batch_size):
            yield self._prepare(normalize(self.images[start : start + batch_size])), self.labels[start : start + batch_size]
