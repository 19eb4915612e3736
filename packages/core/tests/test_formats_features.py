"""Feature files: .npy / .npz / .pt reading, validation, writing, lookup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tal.core.errors import DataFormatError
from tal.core.formats import atomic, check_features, find_feature_file, read_features, write_features


def _feats(c: int = 6, t: int = 11) -> torch.Tensor:
    return torch.arange(c * t, dtype=torch.float32).reshape(c, t) / 7


def _err(path: Path, **kwargs: Any) -> str:
    with pytest.raises(DataFormatError) as info:
        read_features(path, **kwargs)
    assert str(info.value).startswith(str(path)), str(info.value)
    return str(info.value)


@pytest.mark.parametrize("ext", [".npy", ".npz", ".pt"])
@pytest.mark.parametrize("layout", ["TC", "CT"])
def test_round_trip(tmp_path: Path, ext: str, layout: str) -> None:
    x = _feats()
    path = tmp_path / f"video{ext}"
    write_features(path, x, layout=layout)  # type: ignore[arg-type]
    back = read_features(path, layout=layout, expected_channels=6)  # type: ignore[arg-type]
    assert back.dtype == torch.float32 and back.shape == (6, 11) and back.is_contiguous()
    assert torch.equal(back, x)
    if ext == ".npy":
        assert np.load(path).shape == ((11, 6) if layout == "TC" else (6, 11))


def test_actionformer_and_mstcn_layouts(tmp_path: Path) -> None:
    tc = np.random.default_rng(0).normal(size=(40, 8))  # ActionFormer: (T, C) float64 on disk
    np.save(tmp_path / "af.npy", tc)
    x = read_features(tmp_path / "af.npy", layout="TC")
    assert x.shape == (8, 40) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(tc.T).float())
    np.save(tmp_path / "ms.npy", tc.T.astype(np.float32))  # MS-TCN: (C, T)
    assert torch.equal(read_features(tmp_path / "ms.npy", layout="CT"), x)
    np.save(tmp_path / "int.npy", np.arange(12, dtype=np.int16).reshape(3, 4))
    assert read_features(tmp_path / "int.npy").dtype == torch.float32


def test_npz_keys(tmp_path: Path) -> None:
    arr = np.ones((5, 3), np.float32)
    np.savez(tmp_path / "one.npz", feats=arr)
    assert read_features(tmp_path / "one.npz").shape == (3, 5)
    np.savez(tmp_path / "two.npz", feats=arr, extra=arr[:2])
    assert "several arrays (extra, feats); pass key= to choose one" in _err(tmp_path / "two.npz")
    assert read_features(tmp_path / "two.npz", key="feats").shape == (3, 5)
    assert "no array 'feat' in the .npz archive; keys: extra, feats" in _err(tmp_path / "two.npz", key="feat")


def test_pt_variants(tmp_path: Path) -> None:
    x = torch.randn(7, 4)
    torch.save(x, tmp_path / "t.pt")
    assert torch.equal(read_features(tmp_path / "t.pt"), x.t())
    torch.save({"features": x, "fps": 30}, tmp_path / "d.pt")
    assert torch.equal(read_features(tmp_path / "d.pt"), x.t())
    torch.save({"rgb": x, "flow": x}, tmp_path / "two.pt")
    assert "several arrays (flow, rgb)" in _err(tmp_path / "two.pt")
    assert torch.equal(read_features(tmp_path / "two.pt", key="flow"), x.t())
    assert "no entry 'depth' in the dict; keys: rgb, flow" in _err(tmp_path / "two.pt", key="depth")
    torch.save({"fps": 30}, tmp_path / "none.pt")
    assert "the dict holds no tensor; keys: fps" in _err(tmp_path / "none.pt")
    torch.save(x.half(), tmp_path / "half.pt")
    assert read_features(tmp_path / "half.pt").dtype == torch.float32


class _Payload:
    """Not loadable with weights_only=True."""


def test_pt_is_loaded_weights_only(tmp_path: Path) -> None:
    torch.save({"x": torch.zeros(2, 2), "obj": _Payload()}, tmp_path / "unsafe.pt")
    assert "cannot load with torch.load(weights_only=True)" in _err(tmp_path / "unsafe.pt")


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros(5, np.float32), "expected a 2-D (T, C) array, got shape (5,)"),
        (np.zeros((2, 3, 4), np.float32), "expected a 2-D (T, C) array, got shape (2, 3, 4)"),
        (np.zeros((0, 4), np.float32), "empty features: shape (0, 4) is (T, C) with T=0, C=4"),
        (np.zeros((3, 4), bool), "features must be numeric, got dtype bool"),
        (np.zeros((3, 4), np.complex64), "features must be numeric, got dtype complex64"),
        (np.full((3, 4), 1e39), "value np.float64(1e+39) overflows float32 at index (0, 0)"),
    ],
    ids=["1d", "3d", "no_steps", "bool", "complex", "overflow"],
)
def test_bad_arrays(tmp_path: Path, array: np.ndarray, expected: str) -> None:
    np.save(tmp_path / "bad.npy", array)
    assert expected in _err(tmp_path / "bad.npy")


def test_first_non_finite_index(tmp_path: Path) -> None:
    tc = np.zeros((20, 8), np.float32)
    tc[17, 3] = np.nan
    tc[18, 0] = np.inf
    tc[9, 6] = -np.inf
    np.save(tmp_path / "nan.npy", tc)
    msg = _err(tmp_path / "nan.npy")
    assert "non-finite value -inf at index (9, 6) (time step 9, channel 6)" in msg
    np.save(tmp_path / "nan_ct.npy", tc.T)
    assert "at index (6, 9) (time step 9, channel 6)" in _err(tmp_path / "nan_ct.npy", layout="CT")
    tc[9, 6] = 0
    np.save(tmp_path / "nan.npy", tc)
    assert "non-finite value nan at index (17, 3) (time step 17, channel 3)" in _err(tmp_path / "nan.npy")


def test_channel_check_hints_at_layout(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((2048, 100), np.float32))  # (C, T) read as (T, C)
    msg = _err(tmp_path / "f.npy", expected_channels=2048)
    assert "expected 2048 channels, got 100 (shape (2048, 100), layout TC); the file looks like layout 'CT'" in msg
    assert read_features(tmp_path / "f.npy", layout="CT", expected_channels=2048).shape == (2048, 100)


def test_bad_files(tmp_path: Path) -> None:
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    assert "not a NumPy .npy/.npz file" in _err(tmp_path / "junk.npy")
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False")
    assert "not a valid NumPy file" in _err(tmp_path / "cut.npy")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    assert "cannot load with torch.load(weights_only=True)" in _err(tmp_path / "junk.pt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert "Python object array" in _err(tmp_path / "obj.npy")
    (tmp_path / "f.h5").write_bytes(b"")
    assert "unsupported feature file type '.h5'" in _err(tmp_path / "f.h5")
    assert "file not found" in _err(tmp_path / "missing.npy")


def test_writer_validates_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _feats()
    bad[2, 5] = float("nan")
    with pytest.raises(DataFormatError, match=r"x\.npy: non-finite value nan at index \(2, 5\)"):
        write_features(tmp_path / "x.npy", bad)
    with pytest.raises(DataFormatError, match="unsupported feature file type"):
        write_features(tmp_path / "x.txt", _feats())

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError):
        write_features(tmp_path / "x.pt", _feats())
    assert list(tmp_path.iterdir()) == []


def test_check_features_accepts_tensors() -> None:
    x = check_features("mem", torch.ones(3, 4, dtype=torch.float64), layout="CT", expected_channels=3)
    assert x.dtype == torch.float32 and x.shape == (3, 4)
    with pytest.raises(DataFormatError, match=r"mem: features must be numeric, got dtype torch\.bool"):
        check_features("mem", torch.ones(3, 4, dtype=torch.bool))


def test_find_feature_file(tmp_path: Path) -> None:
    for name in ("v_abc123.npy", "v_abc124.npy", "other.npy"):
        (tmp_path / name).write_bytes(b"")
    assert find_feature_file(tmp_path, "abc123", prefix="v_") == tmp_path / "v_abc123.npy"
    assert find_feature_file(tmp_path, "other", ext="npy") == tmp_path / "other.npy"
    with pytest.raises(DataFormatError) as info:
        find_feature_file(tmp_path, "abc125", prefix="v_")
    msg = str(info.value)
    assert msg.startswith(str(tmp_path / "v_abc125.npy"))
    assert "no feature file for video 'abc125'; close names: " in msg
    assert "'v_abc123.npy'" in msg and "'v_abc124.npy'" in msg and "other" not in msg
    with pytest.raises(DataFormatError, match="no similar file names"):
        find_feature_file(tmp_path, "zzzzzzzzzzzzz")
    with pytest.raises(DataFormatError, match="feature directory not found"):
        find_feature_file(tmp_path / "nope", "abc123")
