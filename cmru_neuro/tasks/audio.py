"""Audio tasks read from the user's files, never downloaded: Spiking Heidelberg Digits
(events, through ``tonic``) and Speech Commands keyword spotting (MFCC frames, ``librosa``).

Both need the optional ``data`` extra (``pip install cmru-neuro[data]``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .._checks import check_positive_int
from .base import Split, Task

SHD_FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
SHD_CHANNELS = 700  # cochlea model outputs in the SHD recordings
SHD_CLASSES = 20  # digits 0-9 in English and German
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SAMPLE_RATE = 16_000  # Speech Commands clips: 1 s at 16 kHz
TEST_LIST = "testing_list.txt"


def _require(module: str):
    """Import an optional dependency of the ``data`` extra, or say how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed: the audio tasks need the 'data' extra "
                          f"(pip install 'cmru-neuro[data]')") from None


def _folder(root: Optional[str], what: str) -> Path:
    if root is None:
        raise ValueError(f"root: expected the directory holding {what}, got None")
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"root: no directory at {folder}; expected one holding {what}")
    return folder


def _keep(split: Split, size: Optional[int], name: str) -> Split:
    if size is None:
        return split
    check_positive_int(size, name)
    return Split(split.inputs[:size], split.targets[:size])


# --------------------------------------------------------------------------------------
# Spiking Heidelberg Digits
# --------------------------------------------------------------------------------------


def shd(
    root: Optional[str] = None,
    steps: int = 100,
    channels: int = 70,
    duration: float = 1.0,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
) -> Task:
    """Spiking Heidelberg Digits (Cramer et al. 2020): 20 spoken digits as spike events from
    700 cochlea channels, read by ``tonic.datasets.SHD`` from ``shd_train.h5`` and
    ``shd_test.h5`` (unzipped) in ``root`` or ``root/SHD`` (tonic's layout); never downloaded.

    ``tonic.transforms.Downsample`` pools the channels to ``channels`` and ``ToFrame`` bins
    the first ``duration`` seconds into ``steps`` frames of spike counts: inputs
    ``(N, steps, channels)`` float32, 20 classes. ``train_size`` / ``test_size`` keep the
    first rows.
    """
    check_positive_int(steps, "steps")
    check_positive_int(channels, "channels")
    if channels > SHD_CHANNELS:
        raise ValueError(f"channels: expected at most {SHD_CHANNELS} (SHD's), got {channels}")
    if not duration > 0:
        raise ValueError(f"duration: expected a positive number of seconds, got {duration!r}")
    folder = _folder(root, " and ".join(SHD_FILES.values()))
    if not (folder / SHD_FILES["train"]).is_file() and (folder / "SHD" / SHD_FILES["train"]).is_file():
        folder = folder / "SHD"
    for name in SHD_FILES.values():
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"root: {name} not found in {folder}; expected the unzipped SHD files "
                f"{', '.join(SHD_FILES.values())} (they are never downloaded)"
            )
    tonic = _require("tonic")
    pool = tonic.transforms.Downsample(spatial_factor=channels / SHD_CHANNELS)
    binning = tonic.transforms.ToFrame(sensor_size=(channels, 1, 1), time_window=duration * 1e6 / steps,
                                       start_time=0, end_time=duration * 1e6, include_incomplete=True)

    def transform(events):  # not tonic's Compose: it skips ToFrame for a sample without spikes
        return binning(pool(events))

    splits = []
    for part, size in (("train", train_size), ("test", test_size)):
        dataset = _local_shd(tonic, folder, part == "train", transform)
        count = len(dataset) if size is None else min(check_positive_int(size, f"{part}_size"), len(dataset))
        inputs = np.zeros((count, steps, channels), np.float32)
        targets = np.zeros(count, np.int64)
        for row in range(count):
            frames, targets[row] = dataset[row]
            frames = frames.reshape(len(frames), channels)[:steps]  # (frames, polarity 1, channels, 1)
            inputs[row, : len(frames)] = frames
        if count and (targets.min() < 0 or targets.max() >= SHD_CLASSES):
            raise ValueError(f"root: {SHD_FILES[part]} labels expected in 0..{SHD_CLASSES - 1}, "
                             f"got {targets.min()}..{targets.max()}")
        splits.append(Split(torch.from_numpy(inputs), torch.from_numpy(targets)))
    return Task("shd", splits[0], splits[1], channels, SHD_CLASSES, "classify", "mean")


def _local_shd(tonic, folder: Path, train: bool, transform):
    """``tonic.datasets.SHD`` on ``folder`` as it is: tonic looks for its zip archive in
    ``save_to/SHD`` and downloads when it is missing; this one reads the ``.h5`` in
    ``folder`` and refuses to download."""

    class LocalSHD(tonic.datasets.SHD):
        @property
        def location_on_system(self) -> str:
            return str(folder)

        @location_on_system.setter
        def location_on_system(self, value) -> None:  # tonic's save_to/SHD: ours is the user's folder
            pass

        def _check_exists(self) -> bool:
            return (folder / self.data_filename).is_file()

        def download(self) -> None:
            raise FileNotFoundError(f"root: {self.data_filename} not found in {folder} (SHD is never downloaded)")

    return LocalSHD(str(folder), train=train, transform=transform)


# --------------------------------------------------------------------------------------
# Speech Commands keyword spotting
# --------------------------------------------------------------------------------------


def speech_commands(
    root: Optional[str] = None,
    words: Sequence[str] = COMMANDS,
    unknown: bool = False,
    mfcc: int = 20,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    train_size: Optional[int] = None,
    test_size: Optional[int] = None,
) -> Task:
    """Keyword spotting on Speech Commands (Warden 2018) from its folder of wav files,
    ``root/<word>/<clip>.wav`` (1 s, 16 kHz; other rates are resampled).

    Classes: ``words`` in order (a tuple, or one comma-separated string), plus ``"unknown"`` for every other word's clips when
    ``unknown`` (e.g. ``words=("yes",), unknown=True``: binary spotting, as the circuit
    paper). Test split: the clips listed in ``testing_list.txt`` when ``root`` has it, else
    the dataset's own rule (a hash of the speaker, 10%). Features: ``mfcc`` coefficients
    per frame of ``frame_ms`` every ``hop_ms`` (librosa), standardised with the training
    mean and deviation: inputs ``(N, frames, mfcc)`` float32 (101 frames for 1 s at 10 ms).
    """
    words = tuple(words.split(",")) if isinstance(words, str) else tuple(words)
    if not words or len(set(words)) != len(words) or not all(isinstance(w, str) and w for w in words):
        raise ValueError(f"words: expected distinct non-empty folder names, got {words!r}")
    check_positive_int(mfcc, "mfcc")
    if not 0 < hop_ms <= frame_ms:
        raise ValueError(f"hop_ms: expected 0 < hop_ms <= frame_ms ({frame_ms}), got {hop_ms!r}")
    folder = _folder(root, "one folder of wav files per word")
    missing = [w for w in words if not (folder / w).is_dir()]
    if missing:
        raise FileNotFoundError(f"root: no folder {missing[0]!r} in {folder}; expected one folder of wav files per "
                                f"word ({', '.join(words)})")
    classes = {word: index for index, word in enumerate(words)}
    clips = sorted(
        path for path in folder.glob("*/*.wav")
        if path.parent.name in classes or (unknown and not path.parent.name.startswith("_"))
    )
    if not clips:
        raise FileNotFoundError(f"root: no .wav files in the word folders of {folder}")
    librosa = _require("librosa")
    listed = folder / TEST_LIST
    tested = set(listed.read_text().split()) if listed.is_file() else None
    frame, hop = round(SAMPLE_RATE * frame_ms / 1000), round(SAMPLE_RATE * hop_ms / 1000)
    features = {"train": [], "test": []}
    targets = {"train": [], "test": []}
    for path in clips:
        name = f"{path.parent.name}/{path.name}"
        part = "test" if (name in tested if tested is not None else _hash_split(path.name) < 10) else "train"
        audio, _ = librosa.load(path, sr=SAMPLE_RATE)
        audio = librosa.util.fix_length(audio, size=SAMPLE_RATE)
        coefficients = librosa.feature.mfcc(y=audio, sr=SAMPLE_RATE, n_mfcc=mfcc, n_fft=frame, hop_length=hop)
        features[part].append(coefficients.T.astype(np.float32))
        targets[part].append(classes.get(path.parent.name, len(words)))
    if not features["train"] or not features["test"]:
        empty = "train" if not features["train"] else "test"
        raise ValueError(f"root: the {empty} split of {folder} is empty ({len(clips)} clips in all)")
    train = np.stack(features["train"])
    mean, deviation = train.mean(axis=(0, 1)), train.std(axis=(0, 1)) + 1e-6
    splits = [
        Split(torch.from_numpy((np.stack(features[part]) - mean) / deviation), torch.tensor(targets[part]))
        for part in ("train", "test")
    ]
    train_split = _keep(splits[0], train_size, "train_size")
    test_split = _keep(splits[1], test_size, "test_size")
    return Task("speech-commands", train_split, test_split, mfcc, len(words) + int(unknown), "classify", "mean")


def _hash_split(filename: str) -> int:
    """Speech Commands' own split rule: the percentage bucket of the speaker's hash (files
    of one speaker, ``<speaker>_nohash_<n>.wav``, stay in one split)."""
    speaker = re.sub(r"_nohash_.*$", "", filename)
    bucket = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % (2**27 - 1)
    return int(bucket * 100.0 / (2**27 - 1))
