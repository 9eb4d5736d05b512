"""Tasks: deterministic per seed, shaped as documented, targets that mean what they say."""

import gzip
import random
import struct

import numpy as np
import pytest
import torch

from cmru_neuro.tasks import TASKS, make_task, task_options
from cmru_neuro.tasks.listops import CLOSE, OPERATORS, PAD, evaluate

SMALL = {
    "copy-first": dict(length=30, classes=3, noise=0.1, train_size=20, test_size=10),
    "flip-flop": dict(length=40, bits=2, pulse_probability=0.1, train_size=20, test_size=10),
    "adding": dict(length=30, train_size=20, test_size=10),
    "listops": dict(min_length=10, max_length=40, train_size=20, test_size=10),
    "mnist1d": dict(num_samples=100),
    "digits": dict(),
    "permuted-digits": dict(),
}
# (T, F, O, objective) as documented
SHAPES = {
    "copy-first": (30, 3, 3, "classify"),
    "flip-flop": (40, 2, 2, "classify-steps"),
    "adding": (30, 2, 1, "regress"),
    "listops": (40, 16, 10, "classify"),
    "mnist1d": (40, 1, 10, "classify"),
    "digits": (64, 1, 10, "classify"),
    "permuted-digits": (64, 1, 10, "classify"),
}


def write_idx(path, array, compress=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as handle:  # closed: 3.12's gzip buffers
        handle.write(data)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (12, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 12))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)), compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 5), compress=True)
    return tmp_path


def fresh(name, **options):
    """Bypass make_task's cache: determinism must come from the seed, not from caching."""
    return TASKS[name](**options)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generators_are_deterministic_per_seed_and_shaped_as_documented(name):
    first, again = fresh(name, **SMALL[name]), fresh(name, **SMALL[name])
    for a, b in ((first.train, again.train), (first.test, again.test)):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    length, features, outputs, objective = SHAPES[name]
    assert (first.length, first.input_size, first.output_size, first.objective) == SHAPES[name]
    inputs, targets = first.batch(first.test, torch.arange(4))
    assert inputs.shape == (length, 4, features) and inputs.dtype == torch.float32
    assert targets.shape == {"classify": (4,), "regress": (4,), "classify-steps": (4, length, outputs)}[objective]
    other = fresh(name, **{**SMALL[name], "seed": 7})
    assert not torch.equal(first.train.inputs, other.train.inputs)


def test_copy_first_target_is_the_first_symbol_and_later_steps_are_distractors():
    task = fresh("copy-first", **SMALL["copy-first"])
    inputs = task.train.inputs
    assert torch.equal(inputs[:, 0].argmax(-1), task.train.targets)
    assert torch.equal(inputs[:, 0].sum(-1), torch.ones(len(inputs)))
    assert 0.05 < inputs[:, 1:].std() < 0.15


def test_flip_flop_targets_hold_the_last_command_per_channel():
    task = fresh("flip-flop", **SMALL["flip-flop"])
    pulses, targets = task.train.inputs, task.train.targets
    for row in range(3):
        for channel in range(2):
            state = None
            for t in range(task.length):
                if pulses[row, t, channel] != 0:
                    state = float(pulses[row, t, channel] > 0)
                assert targets[row, t, channel] == state


def test_adding_target_is_the_sum_of_the_two_marked_values_one_per_half():
    task = fresh("adding", **SMALL["adding"])
    values, markers = task.train.inputs[..., 0], task.train.inputs[..., 1]
    assert torch.equal(markers.sum(1), torch.full((20,), 2.0))
    assert torch.equal(markers[:, :15].sum(1), torch.ones(20))
    assert torch.allclose((values * markers).sum(1), task.train.targets)


def reference_value(tokens):
    """Evaluate a token list with an explicit stack (independent of the generator's recursion)."""
    stack = []
    for token in tokens:
        if token == CLOSE:
            values = []
            while not isinstance(stack[-1], str):
                values.append(stack.pop())
            stack[-1] = evaluate(stack[-1], values[::-1])
        elif token >= 11:
            stack.append(OPERATORS[token - 11])
        else:
            stack.append(token - 1)
    assert len(stack) == 1
    return stack[0]


def test_listops_sequences_are_left_padded_in_bounds_and_labelled_by_their_value():
    task = fresh("listops", **SMALL["listops"])
    for row, label in zip(task.train.inputs, task.train.targets):
        tokens = [int(t) for t in row if t != PAD]
        assert 10 <= len(tokens) <= 40
        assert all(int(t) == PAD for t in row[: 40 - len(tokens)])
        assert reference_value(tokens) == int(label)
    assert task.features(task.train.inputs[:2]).sum(-1).eq(1).all()


def test_median_rounds_down_like_lra():
    assert evaluate("[MED", [1, 2, 3, 8]) == 2 and evaluate("[MED", [4, 1, 9]) == 4
    assert evaluate("[SM", [9, 8]) == 7


def test_mnist1d_leaves_the_global_random_state_alone():
    random.seed(3)
    np.random.seed(3)
    expected = random.random(), np.random.rand()
    random.seed(3)
    np.random.seed(3)
    fresh("mnist1d", num_samples=50, seed=5)
    assert (random.random(), np.random.rand()) == expected


def test_permuted_digits_permute_the_pixels_of_the_same_images():
    plain, permuted = fresh("digits"), fresh("permuted-digits")
    assert torch.equal(plain.train.targets, permuted.train.targets)
    assert not torch.equal(plain.train.inputs, permuted.train.inputs)
    assert torch.equal(plain.train.inputs.sort(1).values, permuted.train.inputs.sort(1).values)


def test_smnist_and_pmnist_read_idx_files_plain_or_gzipped(mnist_dir):
    task = make_task("smnist", root=str(mnist_dir), train_size=10)
    assert (len(task.train), len(task.test), task.length, task.input_size) == (10, 5, 784, 1)
    inputs, _ = task.batch(task.test, torch.arange(5))
    assert inputs.shape == (784, 5, 1) and 0 <= inputs.min() and inputs.max() <= 1
    permuted = make_task("pmnist", root=str(mnist_dir), seed=1)
    assert torch.equal(permuted.train.inputs.sort(1).values, fresh("smnist", root=str(mnist_dir)).train.inputs.sort(1).values)


def test_missing_mnist_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        make_task("smnist", root=str(tmp_path))
    with pytest.raises(ValueError, match="root: expected the directory"):
        make_task("pmnist")


def test_corrupt_idx_is_rejected(mnist_dir):
    (mnist_dir / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x0c")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        make_task("smnist", root=str(mnist_dir))


def test_unknown_task_and_option_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown task 'copy'.*copy-first, flip-flop, adding, listops, mnist1d"):
        make_task("copy")
    with pytest.raises(TypeError, match="unknown option.*lenght.*valid options: length, classes"):
        make_task("copy-first", lenght=10)
    assert "permuted" not in task_options("permuted-digits")


@pytest.mark.parametrize("options, match", [
    (dict(length=0), "length: expected a positive integer"),
    (dict(classes=1), "classes: expected at least 2"),
    (dict(noise=-1.0), "noise: expected a non-negative number"),
])
def test_bad_options_name_the_argument(options, match):
    with pytest.raises(ValueError, match=match):
        make_task("copy-first", **options)


# --- audio tasks from the user's files (the 'data' extra) ------------------------------------


def write_shd(path, samples):
    """An HDF5 file in SHD's layout: ``samples`` = [(times in s, units, label), ...]."""
    import h5py

    with h5py.File(path, "w") as handle:
        times = handle.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = handle.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for row, (t, u, _) in enumerate(samples):
            times[row], units[row] = np.asarray(t, np.float32), np.asarray(u, np.uint16)
        handle["labels"] = np.array([label for *_, label in samples], np.uint16)
        handle["extra/keys"] = np.array([f"digit-{k}".encode() for k in range(20)])
        handle["extra/speaker"] = np.zeros(len(samples), np.uint16)


@pytest.fixture
def no_downloads(monkeypatch):
    """Any attempt by tonic to fetch a URL fails the test."""
    pytest.importorskip("tonic", reason="the 'data' extra (tonic) is not installed")
    import tonic.download_utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    for name in ("download_url", "download_and_extract_archive"):
        monkeypatch.setattr(tonic.download_utils, name, refuse)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", refuse)


def test_shd_reads_the_users_hdf5_files_through_tonic_and_bins_them(tmp_path, no_downloads):
    # spikes at 0.05 s on unit 0, 0.35 s on unit 699 (twice) and 0.95 s on unit 350; one beyond 1 s
    write_shd(tmp_path / "shd_train.h5", [([0.05, 0.35, 0.36, 0.95, 1.2], [0, 699, 699, 350, 5], 3),
                                          ([0.5], [10], 19)])
    write_shd(tmp_path / "shd_test.h5", [([], [], 0)])
    task = fresh("shd", root=str(tmp_path), steps=10, channels=70)
    assert task.describe() == "shd: T=10, F=70, O=20, classify, train 2, test 1"
    first = task.train.inputs[0]
    assert first[0, 0] == 1 and first[3, 69] == 2 and first[9, 35] == 1
    assert first.sum() == 4  # the spike after `duration` is cut
    assert task.train.targets.tolist() == [3, 19] and task.test.inputs.abs().sum() == 0
    inputs, targets = task.batch(task.train, torch.arange(2))
    assert inputs.shape == (10, 2, 70) and targets.tolist() == [3, 19]
    (tmp_path / "SHD").mkdir()  # tonic's own layout, root/SHD/, works too
    for name in ("shd_train.h5", "shd_test.h5"):
        (tmp_path / name).rename(tmp_path / "SHD" / name)
    assert torch.equal(fresh("shd", root=str(tmp_path), steps=10, channels=70, train_size=1).train.inputs[0], first)


def test_missing_shd_files_are_named_and_never_downloaded(tmp_path, no_downloads):
    with pytest.raises(FileNotFoundError, match=r"root: shd_train.h5 not found in .*; expected the unzipped SHD "
                                                r"files shd_train.h5, shd_test.h5 \(they are never downloaded\)"):
        fresh("shd", root=str(tmp_path))
    with pytest.raises(ValueError, match="root: expected the directory holding shd_train.h5 and shd_test.h5"):
        fresh("shd")
    with pytest.raises(ValueError, match="channels: expected at most 700"):
        fresh("shd", root=str(tmp_path), channels=701)


def write_wav(path, frequency, seconds=1.0, rate=16_000):
    from scipy.io import wavfile

    time = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (0.3 * 32767 * np.sin(2 * np.pi * frequency * time)).astype(np.int16))


@pytest.fixture
def speech_dir(tmp_path):
    """Speech Commands' layout: one folder per word, <speaker>_nohash_<n>.wav, testing_list.txt."""
    pytest.importorskip("librosa", reason="the 'data' extra (librosa) is not installed")
    for word, frequency in (("yes", 300.0), ("no", 2000.0), ("cat", 900.0)):
        for speaker in ("aa", "bb", "cc"):
            write_wav(tmp_path / word / f"{speaker}_nohash_0.wav", frequency)
    write_wav(tmp_path / "_background_noise_" / "noise.wav", 50.0)
    (tmp_path / "testing_list.txt").write_text("yes/cc_nohash_0.wav\nno/cc_nohash_0.wav\ncat/cc_nohash_0.wav\n")
    return tmp_path


def test_speech_commands_keyword_spotting_from_wav_files(speech_dir):
    task = fresh("speech-commands", root=str(speech_dir), words=("yes", "no"))
    assert task.describe() == "speech-commands: T=101, F=20, O=2, classify, train 4, test 2"
    assert task.train.targets.tolist() == [1, 1, 0, 0] and task.test.targets.tolist() == [1, 0]
    train = task.train.inputs
    assert torch.allclose(train.mean((0, 1)), torch.zeros(20), atol=1e-4)  # standardised on train
    # MFCC frames tell a low tone from a high one: each test clip is nearest its own word's clips
    distance = torch.cdist(task.test.inputs.flatten(1), train.flatten(1))
    assert task.train.targets[distance.argmin(1)].tolist() == task.test.targets.tolist()
    binary = fresh("speech-commands", root=str(speech_dir), words="yes", unknown=True, mfcc=13)
    assert (binary.output_size, binary.input_size) == (2, 13)
    assert sorted(binary.train.targets.tolist()) == [0, 0, 1, 1, 1, 1]  # no and cat are unknown, noise left out


def test_speech_commands_without_a_test_list_splits_by_speaker_hash(speech_dir):
    from cmru_neuro.tasks.audio import _hash_split

    (speech_dir / "testing_list.txt").unlink()
    for speaker in "abcdefghijklmnopqrst":
        write_wav(speech_dir / "yes" / f"{speaker}x_nohash_1.wav", 300.0, seconds=0.5)  # padded to 1 s
    task = fresh("speech-commands", root=str(speech_dir), words=("yes",))
    tested = sum(_hash_split(f"{s}x_nohash_1.wav") < 10 for s in "abcdefghijklmnopqrst")
    tested += sum(_hash_split(f"{s}_nohash_0.wav") < 10 for s in ("aa", "bb", "cc"))
    assert len(task.test) == tested >= 1 and len(task.train) == 23 - tested
    assert task.length == 101


def test_missing_speech_commands_folders_are_named(tmp_path, speech_dir):
    with pytest.raises(FileNotFoundError, match=r"root: no folder 'up' in .*; expected one folder of wav files per word"):
        fresh("speech-commands", root=str(speech_dir))  # the default ten commands
    with pytest.raises(FileNotFoundError, match="root: no directory at"):
        fresh("speech-commands", root=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="words: expected distinct non-empty folder names"):
        fresh("speech-commands", root=str(speech_dir), words=("yes", "yes"))
