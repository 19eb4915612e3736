"""``tal demo --only loc-actionformer``: train a small ActionFormer on synthetic THUMOS-like videos on the CPU.

Writes the data (:mod:`tal.loc_actionformer.synthetic`), trains with tal-core's ``Trainer``
(AdamW, warmup + cosine, clipping, EMA), scores the held-out videos with ``detection-map``
(tIoU 0.3:0.7, as THUMOS14), and writes ``results.json`` (the release's result format) and
``timeline.png`` (detections and ground truth of one video) to the output folder. The run folder
``run/`` holds the checkpoints and the ``config.yaml`` beside them, as ``tal train`` leaves them, so
``tal infer --config run/config.yaml --ckpt run/best.pt`` and ``tal eval`` work on the demo model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from tal.core.config import load_experiment, write_run_config
from tal.core.engine.trainer import Trainer
from tal.core.formats import write_results
from tal.core.registry import Registry
from tal.core.types import Segments
from tal.loc_actionformer.synthetic import FEAT_STRIDE, FPS, NUM_FRAMES, SyntheticSpec, write_synthetic_thumos


def demo_experiment(annotation_file: Path, feature_dir: Path, spec: SyntheticSpec, epochs: int, out: Path) -> dict:
    """The raw experiment config of the demo: a 5-level ActionFormer with 64 channels."""
    data = {
        "name": "actionformer-features",
        "dataset_name": "thumos",
        "annotation_file": str(annotation_file),
        "feature_dir": str(feature_dir),
        "feat_stride": FEAT_STRIDE,
        "num_frames": NUM_FRAMES,
        "default_fps": FPS,
        "max_seq_len": 256,
        "input_dim": spec.input_dim,
        "num_classes": spec.num_classes,
        "crop_ratio": [0.9, 1.0],
    }
    return {
        "model": {
            "name": "actionformer",
            "input_dim": spec.input_dim,
            "num_classes": spec.num_classes,
            "max_seq_len": 256,
            "backbone_arch": [2, 2, 4],
            "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 10000]],
            "n_mha_win_size": 9,
            "embd_dim": 64,
            "fpn_dim": 64,
            "head_dim": 64,
            "max_buffer_len_factor": 1.0,
            "train_cfg": {"init_loss_norm": 50, "clip_grad_l2norm": 1.0, "droppath": 0.1},
            "test_cfg": {"pre_nms_topk": 300, "max_seg_num": 100, "min_score": 0.001, "voting_thresh": 0.7},
        },
        "data": {
            "train": {**data, "subset": "validation", "training": True},
            "val": {**data, "subset": "test"},
        },
        "metric": {"name": "detection-map"},  # tIoU np.linspace(0.3, 0.7, 5), as THUMOS14
        "train": {
            "epochs": epochs,
            "batch_size": 4,
            "optimizer": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.05},
            "scheduler": {"name": "cosine", "warmup_epochs": 2, "eta_min": 1e-8},
            "clip_grad_norm": 1.0,
            "ema": {"enabled": True, "decay": 0.98},
            "seed": 0,
            "eval_every": epochs,
            "best_metric": "average_mAP",
            "device": "cpu",
            "output_dir": str(out / "run"),
            "progress": False,
        },
    }


def run_demo(out_dir: Path, quick: bool = False, *, registry: Registry) -> dict[str, Any]:
    """Generate data, train, evaluate; returns headline numbers (``average_mAP`` in percent)."""
    from rich.console import Console

    console = Console()
    out = Path(out_dir)
    spec = SyntheticSpec(num_train=24 if quick else 48, num_val=8 if quick else 16)
    epochs = 4 if quick else 14
    t0 = time.perf_counter()
    ann, feat_dir = write_synthetic_thumos(out / "data", spec)
    cfg = load_experiment(demo_experiment(ann, feat_dir, spec, epochs, out), registry)
    torch.manual_seed(0)
    model = registry.build("models", cfg.model)
    train_set = registry.build("datasets", cfg.data.train)
    val_set = registry.build("datasets", cfg.data.val)
    metric = registry.build("metrics", cfg.metric)
    console.print(
        f"[bold]loc-actionformer demo[/bold]: {len(train_set)} training / {len(val_set)} test synthetic videos, "
        f"{spec.num_classes} classes, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
        f"{epochs} epochs on the CPU"
    )
    trainer = Trainer(model, train_set, val_set, metric, cfg.train, progress=False)
    write_run_config(Path(cfg.train.output_dir), cfg)  # what tal infer / tal eval read beside the checkpoints
    metrics = trainer.fit()
    train_s = time.perf_counter() - t0

    # detections of every test video with the EMA weights, in the release's result format
    net = trainer.eval_model().eval()
    results: dict[str, Segments] = {}
    first = None
    with torch.inference_mode():
        for i in range(len(val_set)):
            batch = val_set.collate([val_set[i]])
            (dets,) = net(batch)
            vid = batch["video_ids"][0]
            results[vid] = dets
            if first is None:
                first = (vid, dets, batch["targets"][0], batch["duration"][0])
    write_results(out / "results.json", results)
    assert first is not None
    from tal.core.figures import save_timeline

    vid, dets, gt, duration = first
    save_timeline(
        out / "timeline.png",
        dets,
        duration,
        title=f"{vid}: detections (colour = score), ground truth hatched",
        class_names=val_set.class_names,
        ground_truth=gt,
        max_rows=spec.num_classes,
    )
    maps = ", ".join(f"{t:g}: {metrics[f'mAP@{t:g}']:.1f}" for t in (0.3, 0.5, 0.7))
    console.print(
        f"average mAP {metrics['average_mAP']:.2f}% (tIoU {maps}) after {train_s:.1f} s; "
        f"wrote {out / 'results.json'}, {out / 'timeline.png'} and the model with its config in {out / 'run'}"
    )
    return {"average_mAP": float(metrics["average_mAP"]), "mAP@0.5": float(metrics["mAP@0.5"]), "seconds": train_s}
