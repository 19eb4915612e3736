"""``tal demo`` for tal-seg-tst: MS-TCN, then TST on the frozen MS-TCN, on synthetic features of real
Breakfast label sequences; prints backbone vs backbone+TST (F1@{10,25,50}, Edit, Acc) on held-out videos.

The label sequences are the real Breakfast ground-truth files of ``../shared/data/segmentation``
(every other file trains, the rest are scored); frame features are class-conditioned Gaussian noise
whose class evidence is blurred across boundaries (:class:`~tal.seg_tst.data.SyntheticBreakfast`).
Without that folder (a wheel installed elsewhere) core's synthetic Breakfast-like label files are
written to the output folder and used instead, and the demo says so.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from tal.core.config import OptimizerConfig, SchedulerConfig, TrainConfig
from tal.core.demo import find_sample_data, make_synthetic_data
from tal.core.engine.trainer import Trainer
from tal.core.figures import save_label_bars
from tal.seg_tst.config import MSTCNBackboneConfig
from tal.seg_tst.data import SyntheticBreakfast, SyntheticBreakfastConfig
from tal.seg_tst.metric import SegCompareMetric
from tal.seg_tst.modeling.adapters import MSTCNAdapter
from tal.seg_tst.modeling.meta_arch import BackboneWithTST, SegBackboneModel
from tal.seg_tst.modeling.mstcn import MSTCN
from tal.seg_tst.modeling.tst import TSTRefiner

logger = logging.getLogger(__name__)

KEYS = ("F1@10", "F1@25", "F1@50", "Edit", "Acc")


def locate_breakfast(data: Path | None = None) -> Path | None:
    """The Breakfast sample folder: ``data`` (or its ``segmentation/breakfast``), else ``../shared`` above the
    working directory or above this package's checkout."""
    if data is not None:
        for cand in (data, data / "segmentation" / "breakfast", data / "breakfast"):
            if (cand / "mapping.txt").is_file() and (cand / "groundTruth").is_dir():
                return cand
        return None
    return find_sample_data() or find_sample_data(Path(__file__).resolve().parent)


def fallback_labels(root: Path) -> Path:
    """Core's synthetic label files renamed ``P<person>_cam01_P<person>_recipe<r>`` (4 recipes by 3 persons,
    ``P17`` among them) so the demo's cross-subject split applies."""
    make_synthetic_data(root, seed=0, num_videos=12)
    for v, path in enumerate(sorted((root / "groundTruth").glob("*.txt"))):
        person = ("P16", "P17", "P18")[v % 3]
        path.rename(path.with_name(f"{person}_cam01_{person}_recipe{v // 3}.txt"))
    return root


def _settings(quick: bool) -> dict[str, Any]:
    """Sizes and budgets. TST's stage needs about 100 epochs (1,100 steps on the 11 training videos) before
    its refined labels fit the training videos at least as well as the backbone's (after 25 epochs they do
    not: long segments take a neighbouring action's class). One learning rate for every parameter group:
    in so few steps the attention blocks fit faster at the full rate than at the release's 10x lower one."""
    if quick:
        return {"stride": 32, "backbone_epochs": 4, "tst_epochs": 2, "f_maps": 16, "layers": 5, "tst_lr": 2e-3}
    return {"stride": 4, "backbone_epochs": 30, "tst_epochs": 100, "f_maps": 32, "layers": 8, "tst_lr": 2e-3}


def _train(model: torch.nn.Module, train_set: Any, epochs: int, lr: float, out: Path, seed: int) -> Trainer:
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=1,
        optimizer=OptimizerConfig(name="adam", lr=lr),
        scheduler=SchedulerConfig(name="cosine"),
        seed=seed,
        device="cpu",
        progress=False,
        output_dir=str(out),
        checkpoint_every=epochs,
    )
    trainer = Trainer(model, train_set, None, None, cfg, out, progress=False)
    trainer.fit()
    return trainer


def run_demo(out_dir: Path, quick: bool = False, data: Path | None = None) -> dict[str, Any]:
    """Train and score; returns the headline numbers (backbone and TST F1@50 and Edit on the held-out videos).

    Runs on one intra-op thread (restored afterwards): the models are small enough that more threads do not
    help, the printed numbers then do not depend on the thread count torch would pick, and the run does not
    stall when other processes hold the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_demo(Path(out_dir), quick, data)
    finally:
        torch.set_num_threads(threads)


def _run_demo(out_dir: Path, quick: bool, data: Path | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    root = locate_breakfast(data)
    source = "real Breakfast label sequences"
    if root is None:
        root = fallback_labels(out_dir / "labels")
        source = "core's synthetic Breakfast-like label sequences (the shared Breakfast folder was not found)"
    print(f"label sequences: {source} ({root})")
    s = _settings(quick)
    common = {"root": str(root), "stride": s["stride"], "input_dim": 32, "noise": 0.7, "blur": 2.0}
    train_set = SyntheticBreakfast(SyntheticBreakfastConfig(subset="train", **common))
    test_set = SyntheticBreakfast(SyntheticBreakfastConfig(subset="test", **common))
    k = train_set.num_classes
    torch.manual_seed(0)
    backbone_cfg = MSTCNBackboneConfig(
        num_classes=k, input_dim=32, num_stages=2, num_layers=s["layers"], num_f_maps=s["f_maps"], dropout=0.3
    )
    stage1 = SegBackboneModel(MSTCNAdapter(MSTCN(backbone_cfg)), train_offset="first", eval_offsets="first")
    _train(stage1, train_set, s["backbone_epochs"], 5e-3, out_dir / "stage1", seed=0)

    refiner = TSTRefiner(n_classes=k, feat_dim=s["f_maps"], inner_dim=32, sd_dim=64, n_layers=6, dropout=0.1)
    # The frozen MS-TCN runs in eval mode while TST trains (backbone_train_mode=False): its dropout-noisy
    # train-mode segmentations are far more fragmented than at test time (DiffAct's release keeps train mode).
    model = BackboneWithTST(
        stage1.adapter, refiner, freeze_backbone=True, lr_transformer=s["tst_lr"], backbone_train_mode=False
    )
    model.backbone_ready = True
    _train(model, train_set, s["tst_epochs"], s["tst_lr"], out_dir / "stage2", seed=1)

    model.eval()
    metric = SegCompareMetric()
    metric.set_class_names(test_set.class_names)
    first: dict[str, Any] = {}
    with torch.no_grad():
        for i in range(len(test_set)):
            batch = test_set.collate([test_set[i]])
            pred = model(batch)
            metric.update(pred, batch["targets"], batch["video_ids"])
            if i == 0:
                labels = {k2: pred[0][k2].numpy() for k2 in ("backbone", "refined")}
                first = {"ground truth": batch["targets"][0].numpy(), **labels}
    scores = metric.compute()
    print(f"{'':10s}" + "".join(f"{key:>9s}" for key in KEYS))
    for name in ("backbone", "refined"):
        label = "MS-TCN" if name == "backbone" else "MS-TCN+TST"
        print(f"{label:10s}" + "".join(f"{scores[name][key]:9.1f}" for key in KEYS))
    fig = save_label_bars(
        out_dir / "seg_tst_bars.png", first, test_set.class_names, title=f"{test_set.video_ids[0]} (held out)"
    )
    headline = {
        "backbone F1@50": float(scores["backbone"]["F1@50"]),
        "TST F1@50": float(scores["refined"]["F1@50"]),
        "backbone Edit": float(scores["backbone"]["Edit"]),
        "TST Edit": float(scores["refined"]["Edit"]),
    }
    results = {
        "source": source,
        "videos": {"train": len(train_set), "test": len(test_set)},
        "scores": {n: {key: float(scores[n][key]) for key in KEYS} for n in scores},
        "seconds": time.perf_counter() - t0,
        "figure": str(fig),
    }
    (out_dir / "seg_tst_results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {out_dir / 'seg_tst_results.json'} and {fig}")
    return headline
