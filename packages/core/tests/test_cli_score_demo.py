"""`tal score loc|seg` output contract and `tal demo` end to end."""

from __future__ import annotations

import json

import pytest

from tal.core.cli.main import main
from tal.core.demo import make_synthetic_data, run_demo

GT = {
    "version": "test",
    "database": {
        "v1": {
            "subset": "test",
            "duration": 30.0,
            "fps": 30.0,
            "annotations": [
                {"segment": [1.0, 5.0], "label": "jump", "label_id": 0},
                {"segment": [10.0, 20.0], "label": "run", "label_id": 1},
            ],
        },
        "v2": {
            "subset": "test",
            "duration": 10.0,
            "fps": 30.0,
            "annotations": [{"segment": [2.0, 4.0], "label": "jump", "label_id": 0}],
        },
        "v3": {
            "subset": "train",
            "duration": 10.0,
            "fps": 30.0,
            "annotations": [{"segment": [0.0, 9.0], "label": "run", "label_id": 1}],
        },
    },
}


def _score(capsys, *args: str) -> dict:
    assert main(["score", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_loc_contract_and_label_forms(tmp_path, capsys):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    # v1: both instances found; the run detection by class name, the jump by integer id. v2: a miss.
    pred = {
        "results": {
            "v1": [
                {"segment": [1.0, 5.0], "label": 0, "score": 0.9},
                {"segment": [10.0, 20.0], "label": "run", "score": 0.8},
            ],
            "v2": [{"segment": [6.0, 8.0], "label": "jump", "score": 0.95}],
        }
    }
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    out = _score(capsys, "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--subset", "test", "--tiou", "0.5", "0.7", "--top-k", "1")  # fmt: skip
    assert set(out) == {"tiou_thresholds", "mAP", "average_mAP", "recall"}
    assert out["tiou_thresholds"] == [0.5, 0.7]
    # jump: predictions by score: v2 (fp, 0.95), v1 (tp, 0.9); 2 gt -> precision [0, 1/2], recall [0, 1/2]
    #   interpolated AP = 0.5 * 0.5 = 0.25.  run: one tp of one gt -> AP 1.  mAP = (0.25 + 1) / 2 = 62.5 %
    assert out["mAP"] == pytest.approx([62.5, 62.5])
    assert out["average_mAP"] == pytest.approx(62.5)
    # Recall@1x: jump: v1 top-1 covers its instance, v2 top-1 misses -> 1/2; run: 1/1 -> mean 75 %
    assert out["recall"] == {"1x": pytest.approx([75.0, 75.0])}
    # without --subset the train video's instance counts as a miss for "run": AP 1/2
    everything = _score(capsys, "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"))
    assert everything["mAP"][2] == pytest.approx((25.0 + 50.0) / 2)


def test_score_loc_unknown_label_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    pred = {"results": {"v1": [{"segment": [1.0, 5.0], "label": "swim", "score": 0.9}]}}
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    code = main(["score", "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json")])
    err = capsys.readouterr().err
    assert code == 2 and "pred.json" in err and "swim" in err and "results.v1[0]" in err


def test_score_seg_contract(tmp_path, capsys):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "mapping.txt").write_text("0 background\n1 cut\n2 pour\n")
    (tmp_path / "gt" / "a.txt").write_text("\n".join(["background"] * 2 + ["cut"] * 4 + ["pour"] * 4) + "\n")
    # MS-TCN header style; 'pour' starts one frame late -> 9 of 10 frames right
    (tmp_path / "pred" / "a.txt").write_text(
        "### Frame level recognition: ###\n" + " ".join(["background"] * 2 + ["cut"] * 5 + ["pour"] * 3)
    )
    (tmp_path / "pred" / "orphan.txt").write_text("cut\n")  # no ground truth: ignored
    out = _score(capsys, "seg", "--gt-dir", str(tmp_path / "gt"), "--pred-dir", str(tmp_path / "pred"),
                 "--mapping", str(tmp_path / "mapping.txt"))  # fmt: skip
    assert set(out) == {"F1@10", "F1@25", "F1@50", "Edit", "Acc"}
    assert out["Acc"] == pytest.approx(90.0)
    assert out["Edit"] == pytest.approx(100.0)
    # both action segments overlap their ground truth with IoU >= 0.75 -> F1 = 100 at every threshold
    assert out["F1@10"] == out["F1@25"] == out["F1@50"] == pytest.approx(100.0)


def test_demo_numbers_match_tal_score_on_its_own_files(tmp_path, capsys):
    data = make_synthetic_data(tmp_path / "data", seed=3, num_videos=4)
    headline = run_demo(tmp_path / "out", data=data)
    report = json.loads((tmp_path / "out" / "core_demo.json").read_text())
    assert (tmp_path / "out" / "core_demo.png").stat().st_size > 10_000
    assert headline["videos"] == 4 and len(report["videos"]) == 4
    capsys.readouterr()
    for predictor, scores in report["scores"].items():
        assert all(0.0 <= v <= 100.0 for v in scores.values())
        again = _score(capsys, "seg", "--gt-dir", str(data / "groundTruth"),
                       "--pred-dir", str(tmp_path / "out" / "predictions" / predictor),
                       "--mapping", str(data / "mapping.txt"))  # fmt: skip
        for key in ("F1@10", "F1@25", "F1@50", "Edit", "Acc"):
            assert again[key] == pytest.approx(scores[key]), (predictor, key)


def test_tal_demo_command_runs_every_demo(tmp_path, capsys):
    assert (
        main(["demo", "--out", str(tmp_path), "--only", "core", "--data", str(make_synthetic_data(tmp_path / "d"))])
        == 0
    )
    assert (tmp_path / "core" / "core_demo.json").is_file()
    assert main(["demo", "--only", "nope", "--out", str(tmp_path)]) == 2


def test_score_seg_unknown_background_excludes_nothing_like_mstcn(tmp_path, capsys):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "mapping.txt").write_text("0 SIL\n1 cut\n")
    (tmp_path / "gt" / "a.txt").write_text("SIL\nSIL\ncut\ncut\n")
    (tmp_path / "pred" / "a.txt").write_text("cut\ncut\ncut\ncut\n")
    args = ["--gt-dir", str(tmp_path / "gt"), "--pred-dir", str(tmp_path / "pred")]
    assert main(["score", "seg", *args, "--mapping", str(tmp_path / "mapping.txt"), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # default background "background" is not a class: SIL counts as a segment (as in MS-TCN's eval.py)
    # gt segments [SIL, cut], pred [cut]: edit distance 1 of max(2, 1) -> Edit 50; Acc 2/4
    assert out["Edit"] == pytest.approx(50.0) and out["Acc"] == pytest.approx(50.0)
    assert "no class is excluded" in captured.err
    sil = _score(capsys, "seg", *args, "--mapping", str(tmp_path / "mapping.txt"), "--background", "SIL")
    assert sil["Edit"] == pytest.approx(100.0)


def test_score_loc_default_thresholds_are_reported_rounded(tmp_path, capsys):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "pred.json").write_text(json.dumps({"results": {}}))
    out = _score(capsys, "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"))
    assert out["tiou_thresholds"] == [0.3, 0.4, 0.5, 0.6, 0.7]
    assert out["mAP"] == [0.0] * 5 and out["recall"]["5x"] == [0.0] * 5
