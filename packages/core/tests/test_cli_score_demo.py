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


def test_score_loc_scores_odd_predictions_as_given_with_one_warning(tmp_path, capsys, caplog):
    """Negative starts, ends past the duration and zero-length segments are scored, not refused."""
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    pred = {
        "results": {
            "v1": [
                # tIoU with [1, 5]: intersection 4, union 4 + 6.56 + 0... = [−2, 5] vs [1, 5] -> 4 / 7 = 0.571
                {"segment": [-2.0, 5.0], "label": 0, "score": 0.9},
                {"segment": [10.0, 40.0], "label": 1, "score": 0.8},  # past the 30 s video: IoU 10 / 30
                {"segment": [3.0, 3.0], "label": 0, "score": 0.1},  # zero length: IoU 0
            ],
        }
    }
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    out = _score(capsys, "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--subset", "test", "--tiou", "0.3", "0.5", "--top-k", "1")  # fmt: skip
    # jump (2 gt: v1 [1,5], v2 [2,4]): at 0.3 and 0.5 the 0.9 prediction is a tp (0.571), the 3-3 one a fp:
    #   precision [1, 1/2], recall [1/2, 1/2] -> AP 1/2.  run (1 gt): IoU 1/3: tp at 0.3 (AP 1), fp at 0.5 (AP 0)
    assert out["mAP"] == pytest.approx([(50.0 + 100.0) / 2, (50.0 + 0.0) / 2])
    warnings = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "scored as given" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "1 predictions start before 0 s" in warnings[0] and "1 predictions have zero length" in warnings[0]
    assert "1 predictions end after their video's duration" in warnings[0]


def test_score_loc_warns_when_video_ids_match_no_ground_truth(tmp_path, capsys, caplog):
    (tmp_path / "gt.json").write_text(json.dumps({"database": {f"v_{k}": v for k, v in GT["database"].items()}}))
    pred = {"results": {"v1": [{"segment": [1.0, 5.0], "label": 0, "score": 0.9}], "v2": []}}
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    out = _score(capsys, "loc", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"))
    assert out["average_mAP"] == 0.0
    text = caplog.text
    assert "1 of 1 videos with predictions (1 predictions) match no ground-truth video, e.g. 'v1'" in text
    assert "with a 'v_' prefix" in text
    assert "3 of 3 ground-truth videos have no predictions" in text


def _seg_files(tmp_path, videos: dict[str, list[str]], preds: dict[str, list[str]]):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    (tmp_path / "mapping.txt").write_text("0 background\n1 pour\n2 stir\n")
    for v, labels in videos.items():
        (tmp_path / "gt" / f"{v}.txt").write_text("\n".join(labels) + "\n")
    for v, labels in preds.items():
        (tmp_path / "pred" / v).write_text("### Frame level recognition: ###\n" + " ".join(labels) + "\n")
    return ["seg", "--gt-dir", str(tmp_path / "gt"), "--pred-dir", str(tmp_path / "pred"),
            "--mapping", str(tmp_path / "mapping.txt")]  # fmt: skip


def test_score_seg_refuses_a_missing_prediction_unless_allowed(tmp_path, capsys, caplog):
    a = ["background", "pour", "pour", "stir"]
    b = ["pour", "pour", "stir", "stir"]
    args = _seg_files(tmp_path, {"a": a, "b": b}, {"a": a})
    assert main(["score", *args, "--json"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 videos" in err and "'b'" in err and "--allow-missing" in err and "--bundle" in err
    out = _score(capsys, *args, "--allow-missing")
    assert out["Acc"] == 100.0 and "scoring the other 1" in caplog.text
    # a bundle names the videos to score: b is not in it, so nothing is missing
    (tmp_path / "test.split1.bundle").write_text("a.txt\n")
    assert _score(capsys, *args, "--bundle", str(tmp_path / "test.split1.bundle"))["Acc"] == 100.0


def test_score_seg_warns_about_predictions_without_ground_truth(tmp_path, capsys, caplog):
    a = ["background", "pour", "pour", "stir"]
    args = _seg_files(tmp_path, {"a": a}, {"a": a, "zzz": a})
    assert _score(capsys, *args)["Edit"] == 100.0
    assert "1 prediction files are for no video scored here, e.g. 'zzz'" in caplog.text
