"""tal.core.figures: the timeline and label-bar figures every method uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tal.core import figures
from tal.core.errors import ConfigError
from tal.core.types import Segments


def test_runs_of_equal_labels() -> None:
    s, e, lab = figures.runs(np.array([3, 3, 1, 1, 1, 3]))
    assert s.tolist() == [0, 2, 5] and e.tolist() == [2, 5, 6] and lab.tolist() == [3, 1, 3]
    assert [len(x) for x in figures.runs(np.array([], dtype=int))] == [0, 0, 0]


def test_check_figure_path() -> None:
    assert figures.check_figure_path("a/b.PNG").name == "b.PNG"
    with pytest.raises(ConfigError, match="no extension"):
        figures.check_figure_path("plot")


def _image(path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def test_short_low_scored_detections_stay_visible(tmp_path) -> None:
    """THUMOS-like: 200 detections with raw scores down to 0.001 on a 200 s video; some 0.2 s long."""
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 199, 200)
    lengths = np.where(rng.random(200) < 0.5, 0.2, rng.uniform(1, 10, 200))
    scores = np.sort(rng.uniform(0.001, 0.05, 200))[::-1].copy()
    dets = Segments(
        torch.tensor(np.stack([starts, starts + lengths], 1)),
        torch.tensor(rng.integers(0, 20, 200)),
        torch.tensor(scores),
    )
    gt = Segments(torch.tensor([[10.0, 20.0]]), torch.tensor([3]))
    names = [f"class{i}" for i in range(20)]
    out = figures.save_timeline(tmp_path / "t.png", dets, 200.0, class_names=names, ground_truth=gt)
    img = _image(out)
    # most of the plotting area is not white: the bars are drawn opaque with a colour scale
    colored = (np.abs(img[..., :3] - 1.0).sum(-1) > 0.3).mean()
    assert colored > 0.05


def test_label_bars_figure(tmp_path) -> None:
    gt = np.repeat([0, 1, 2, 0], 50)
    pred = np.repeat([0, 1, 1, 2, 0], 40)
    out = figures.save_label_bars(
        tmp_path / "bars.png", {"ground truth": gt, "refined": pred}, ["bg", "a", "b"], fps=15
    )
    assert out.stat().st_size > 1000 and _image(out).shape[0] > 100
