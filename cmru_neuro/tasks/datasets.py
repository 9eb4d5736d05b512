"""Real data, offline: MNIST-1D (generated from the package's templates), scikit-learn's
8x8 digits and MNIST read from IDX files in a user directory, as pixel sequences."""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .._checks import check_positive_int
from .base import Split, Task, generator, split_rows

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES = {0x08: np.uint8}


def mnist1d(num_samples: int = 5000, seed: int = 42) -> Task:
    """MNIST-1D (Greydanus 2020) built from the package's templates, no download.

    Inputs ``(N, 40, 1)`` (standardised), 10 classes; 80% train. ``seed=42`` with 5000
    samples is the published dataset.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    check_positive_int(num_samples, "num_samples")
    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, int(seed)
    saved = random.getstate(), np.random.get_state()
    try:  # make_dataset reseeds the global RNGs; put them back
        data = make_dataset(args)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])

    def split(x, y) -> Split:
        return Split(torch.tensor(x, dtype=torch.float32).unsqueeze(-1), torch.tensor(y, dtype=torch.long))

    return Task(
        "mnist1d", split(data["x"], data["y"]), split(data["x_test"], data["y_test"]), 1, 10,
        "classify", "mean",
    )


def digits(permuted: bool = False, test_fraction: float = 0.2, seed: int = 0) -> Task:
    """scikit-learn's 8x8 digits (1797 images) as 64-step pixel sequences ``(N, 64, 1)``
    in [0, 1], 10 classes. ``seed`` shuffles the split and (``permuted``) fixes the pixel
    order permutation."""
    from sklearn.datasets import load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
    bunch = load_digits()
    rng = generator(seed)
    order = torch.randperm(len(bunch.target), generator=rng)
    pixels = torch.tensor(bunch.data, dtype=torch.float32)[order] / 16.0
    if permuted:
        pixels = pixels[:, torch.randperm(pixels.shape[1], generator=rng)]
    labels = torch.tensor(bunch.target, dtype=torch.long)[order]
    train, test = split_rows(pixels.unsqueeze(-1), labels, round(len(labels) * (1 - test_fraction)))
    return Task(
        "permuted-digits" if permuted else "digits", train, test, 1, 10, "classify", "mean",
    )


def mnist(
    root: Optional[str] = None,
    permuted: bool = False,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
    seed: int = 0,
) -> Task:
    """Sequential (or permuted) MNIST: 784-step pixel sequences ``(N, 784)`` uint8, read
    from the four standard IDX files (optionally ``.gz``) in ``root``. ``train_size`` /
    ``test_size`` keep the first rows; ``seed`` fixes the permutation."""
    if root is None:
        raise ValueError(f"root: expected the directory holding {', '.join(MNIST_FILES.values())}")
    folder = Path(root)
    arrays = {key: read_idx(_find_idx(folder, name)) for key, name in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"root: {part} files expected images (N, rows, cols) and labels (N,), got "
                f"{images.shape} and {labels.shape}"
            )
    splits = []
    for part, size in (("train", train_size), ("test", test_size)):
        images = torch.from_numpy(arrays[f"{part}_images"].reshape(len(arrays[f"{part}_images"]), -1).copy())
        labels = torch.from_numpy(arrays[f"{part}_labels"].astype(np.int64))
        if size is not None:
            check_positive_int(size, f"{part}_size")
            images, labels = images[:size], labels[:size]
        splits.append([images, labels])
    if permuted:
        permutation = torch.randperm(splits[0][0].shape[1], generator=generator(seed))
        for pair in splits:
            pair[0] = pair[0][:, permutation]
    return Task(
        "pmnist" if permuted else "smnist", Split(*splits[0]), Split(*splits[1]), 1, 10,
        "classify", "mean", encoding="pixels",
    )


def _find_idx(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"root: {name} (or {name}.gz) not found in {folder}; expected the MNIST IDX files "
        f"{', '.join(MNIST_FILES.values())}"
    )


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzip) as an array; only unsigned-byte data is accepted."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    dims = raw[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} bytes of data for shape {shape}, got {len(raw) - header}")
    return np.frombuffer(raw, dtype=_IDX_TYPES[raw[2]], offset=header).reshape(shape)
