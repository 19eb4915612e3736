"""Readers (NTU .skeleton, NW-UCLA json), the NTU pipeline, feeder transforms and datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tal.core.errors import DataFormatError
from tal.skeleton_lst import read_ntu_skeleton, read_nw_ucla, ucla_eval_transform
from tal.skeleton_lst.data.datasets import NWUCLAConfig, NWUCLASkeletons, SyntheticSkeletonConfig, SyntheticSkeletons
from tal.skeleton_lst.data.ntu_pipeline import denoised_joints, pad_frames, preprocess, split_indices, translate
from tal.skeleton_lst.data.ntu_skeleton import parse_ntu_name
from tal.skeleton_lst.data.transforms import random_rot, rotation_matrix, to_bone, to_motion, valid_crop_resize
from tal.skeleton_lst.data.ucla import ucla_train_transform
from tal.skeleton_lst.graphs import BONE_PAIRS


def write_skeleton(path: Path, frames: list[list[tuple[str, np.ndarray]]]) -> None:
    """Write a .skeleton file: per frame a list of (body id, joints (25, 3))."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1 0.2 2")
            lines.append("25")
            for x, y, z in joints:
                lines.append(f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 900.5 500.25 0.1 0.2 0.3 0.9 2")
    path.write_text("\n".join(lines) + "\n")


def body(rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    j = rng.normal(0, 0.1, size=(25, 3)).astype(np.float32)
    j[:, 1] *= 4  # tall: y spread larger than x spread (plausible frames)
    return j + offset


def test_ntu_reader_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = [body(rng) for _ in range(3)]
    path = tmp_path / "S001C002P003R002A013.skeleton"
    write_skeleton(
        path, [[("72057594037931101", a[0])], [], [("72057594037931101", a[1])], [("72057594037931101", a[2])]]
    )
    ske = read_ntu_skeleton(path)
    assert ske.num_frames == 3 and ske.dropped_frames == [1]
    (b,) = ske.bodies.values()
    assert b.interval == [0, 1, 2]
    np.testing.assert_allclose(b.joints, np.stack(a), atol=1e-6)
    np.testing.assert_allclose(b.colors[0, 0], [900.5, 500.25])
    assert parse_ntu_name(path.name).label == 12 and parse_ntu_name(path.name).camera == 2


@pytest.mark.parametrize(
    "text,line,message",
    [
        (
            "2\n1\n7 0 1\n25\n" + "0 0 0 1 1 1 1 0 0 0 0 2\n" * 25 + "1\n7 0 1\n25\n" + "0 0 0 1 1 1 1\n" * 3,
            36,
            "ends early.*joint 4",
        ),
        ("1\n1\n7 0 1\n25\n" + "0 0 0 1 1 1 1\n" * 4 + "0 abc 0 1 1 1 1\n", 9, "non-numeric"),
        ("x\n", 1, "integer"),
        ("1\n1\n7 0 1\n24\n", 4, "expected 25 joints"),
    ],
)
def test_ntu_reader_errors_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "bad.skeleton"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=rf"bad\.skeleton.*line {line}:.*{message}"):
        read_ntu_skeleton(path)


def test_ntu_pipeline_two_actors_and_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = []
    for f in range(20):
        bodies = [("A", body(rng)), ("B", body(rng, 1.0) + rng.normal(0, 0.3, (25, 3)).astype(np.float32))]
        if f < 5:
            bodies.append(("short", body(rng)))  # 5 frames <= 11: dropped by length
        frames.append(bodies)
    path = tmp_path / "S001C001P001R001A050.skeleton"
    write_skeleton(path, frames)
    ske = read_ntu_skeleton(path)
    joints = denoised_joints(ske)
    assert joints.shape == (20, 150)
    # actor 1 is the body with the larger motion: B (noisier)
    b, a = ske.bodies["B"], ske.bodies["A"]
    assert b.motion > a.motion
    np.testing.assert_allclose(joints[:, :75], b.joints.reshape(20, 75))
    np.testing.assert_allclose(joints[:, 75:], a.joints.reshape(20, 75))
    row = preprocess(ske)
    assert row.shape == (300, 150) and not row[20:].any()
    np.testing.assert_allclose(row[0, 3:6], 0.0, atol=1e-6)  # centred on joint 2 of actor 1's first frame
    np.testing.assert_allclose(row[:20, 75:] - row[:20, :75], joints[:, 75:] - joints[:, :75], atol=1e-5)


def test_translate_keeps_missing_actor_zero() -> None:
    x = np.zeros((3, 150), np.float32)
    x[:, :75] = 1.0
    x[1, 75:] = 2.0
    out = translate(x)
    assert not out[[0, 2], 75:].any()
    np.testing.assert_allclose(out[1, 75:], 1.0)
    assert pad_frames(np.ones((2, 75), np.float32), 4).tolist()[0][75:] == [0.0] * 75


def test_split_indices_follow_release_order() -> None:
    names = ["S001C001P003R001A001", "S001C002P001R001A002", "S002C003P002R001A003", "S001C001P001R002A004"]
    train, test = split_indices(names, "ntu60-xsub")
    assert train.tolist() == [1, 3, 2] and test.tolist() == [0]  # grouped by subject id 1, 2, then 3
    train, test = split_indices(names, "ntu60-xview")
    assert train.tolist() == [1, 2] and test.tolist() == [0, 3]
    train, test = split_indices(names, "ntu120-xset")
    assert train.tolist() == [2] and test.tolist() == [0, 1, 3]


def test_valid_crop_resize_test_mode_is_bilinear_resize() -> None:
    c, t, v, m = 3, 40, 25, 2
    data = np.zeros((c, 50, v, m), np.float32)
    ramp = np.arange(t, dtype=np.float32)
    data[:, :t] = ramp[None, :, None, None] + 1
    out = valid_crop_resize(data, t, [0.95], 64)
    bias = int((1 - 0.95) * t / 2)
    cropped = ramp[bias : t - bias] + 1
    # bilinear, align_corners=False: source position (i + 0.5) * L / 64 - 0.5, clamped
    src = np.clip((np.arange(64) + 0.5) * len(cropped) / 64 - 0.5, 0, len(cropped) - 1)
    want = np.interp(src, np.arange(len(cropped)), cropped)
    np.testing.assert_allclose(out[0, :, 0, 0], want, rtol=1e-5)
    rng = np.random.default_rng(0)
    train = valid_crop_resize(data, t, [0.5, 1.0], 64, rng)
    assert train.shape == (3, 64, 25, 2)


def test_rotation_bone_motion() -> None:
    r = rotation_matrix(np.array([0.1, -0.2, 0.3]))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    x = np.random.default_rng(0).normal(size=(3, 5, 25, 2)).astype(np.float32)
    y = random_rot(x, rng=np.random.default_rng(1))
    np.testing.assert_allclose(np.linalg.norm(y, axis=0), np.linalg.norm(x, axis=0), rtol=1e-5)
    b = to_bone(x, BONE_PAIRS["ntu"])
    np.testing.assert_allclose(b[:, :, 0], x[:, :, 0] - x[:, :, 1])
    assert not b[:, :, 20].any()  # (21, 21): the centre's bone is 0
    mo = to_motion(x)
    np.testing.assert_allclose(mo[:, 0], x[:, 1] - x[:, 0])
    assert not mo[:, -1].any()


def write_ucla(path: Path, joints: np.ndarray, label: int) -> None:
    path.write_text(json.dumps({"file_name": path.stem, "skeletons": joints.tolist(), "label": label}))


def test_nw_ucla_reader_and_eval_transform(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    joints = rng.normal(size=(30, 20, 3))
    path = tmp_path / "a08_s02_e01_v03.json"
    write_ucla(path, joints, 7)
    got, label = read_nw_ucla(path)
    np.testing.assert_array_equal(got, joints)
    assert label == 6  # json label 7 (action a08) -> 0-based 6
    out = ucla_eval_transform(got, "joint")
    assert out.shape == (3, 52, 20, 1) and out.dtype == np.float64
    # by hand: centre on joint 2 of frame 0, min-max per axis to [-1, 1], frames linspace(0, 29, 52)
    centred = joints - joints[0, 1]
    lo, hi = centred.reshape(-1, 3).min(0), centred.reshape(-1, 3).max(0)
    norm = (centred - lo) / (hi - lo) * 2 - 1
    idx = np.linspace(0, 29, 52).astype(int)
    np.testing.assert_allclose(out[..., 0], norm[idx].transpose(2, 0, 1), rtol=0, atol=1e-12)
    bone = ucla_eval_transform(got, "bone")
    np.testing.assert_allclose(bone[:, :, 3, 0], out[:, :, 3, 0] - out[:, :, 2, 0])  # (4, 3) 1-based
    assert not bone[:, :, 2].any()  # (3, 3)
    bm = ucla_eval_transform(got, "bone_motion")
    np.testing.assert_allclose(bm[:, :-1], bone[:, 1:] - bone[:, :-1])
    train = ucla_train_transform(got, "joint", np.random.default_rng(0))
    assert train.shape == (3, 52, 20, 1) and train.min() >= -1 - 1e-9 and train.max() <= 1 + 1e-9


def test_nw_ucla_reader_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a01_s01_e01_v01.json"
    bad.write_text(json.dumps({"skeletons": [[[0, 0]] * 20]}))
    with pytest.raises(DataFormatError, match=r"a01_s01_e01_v01\.json.*shape"):
        read_nw_ucla(bad)
    wrong = tmp_path / "a01_s01_e01_v02.json"
    write_ucla(wrong, np.ones((2, 20, 3)), 5)
    with pytest.raises(DataFormatError, match="disagrees"):
        read_nw_ucla(wrong)


def test_ucla_dataset_views_and_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for name, label in [("a01_s01_e00_v01", 1), ("a12_s02_e00_v02", 10), ("a03_s01_e01_v03", 3)]:
        write_ucla(tmp_path / f"{name}.json", rng.normal(size=(12, 20, 3)), label)
    train = NWUCLASkeletons(NWUCLAConfig(root=str(tmp_path), split="train", repeat=5))
    val = NWUCLASkeletons(NWUCLAConfig(root=str(tmp_path), split="val"))
    assert len(train) == 10 and len(val) == 1
    batch = train.collate([train[0], train[1]])
    assert batch["inputs"].shape == (2, 3, 52, 20, 1) and batch["labels"].tolist() == [0, 9]
    vid, x, y = val[0]
    assert vid == "a03_s01_e01_v03" and y == 2
    np.testing.assert_allclose(x, ucla_eval_transform(read_nw_ucla(tmp_path / f"{vid}.json")[0]).astype(np.float32))


def test_synthetic_dataset() -> None:
    ds = SyntheticSkeletons(SyntheticSkeletonConfig(num_per_class=2, num_frames=8, seed=0))
    assert len(ds) == 12
    _, x, y = ds[7]
    assert x.shape == (3, 8, 25, 2) and y == 1 and not x[..., 1].any()
    np.testing.assert_allclose(ds.data[0][:, 0, 1, 0], 0.0, atol=1e-6)  # centred on joint 2
    assert torch.is_tensor(ds.collate([ds[0]])["inputs"])
