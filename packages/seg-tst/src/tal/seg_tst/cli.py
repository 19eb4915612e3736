"""``tal infer`` for the segmentation models: frame labels of one video, in MS-TCN's prediction format.

``tal infer --config seg-tst/gtea --split 1 --ckpt split_1_best.pth --feat rgb-01-1.npy --out rgb-01-1.txt
--save-fig bars.png --gt groundTruth/rgb-01-1.txt`` reads the ``(C, T)`` features (MS-TCN layout), runs the
backbone and TST, writes the refined labels (``### Frame level recognition: ###`` then the names; also the
backbone's labels with ``--backbone-out``), prints the segments, scores them against ``--gt`` and draws
colour bars: ground truth, backbone, refined (``tal.core.figures``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch

from tal.core.errors import ConfigError, DataFormatError
from tal.core.figures import save_label_bars
from tal.core.formats import read_features, read_ground_truth, read_mapping
from tal.core.formats.mstcn import write_prediction
from tal.core.metrics.segmentation import evaluate_segmentation
from tal.core.registry import Registry
from tal.seg_tst.data import DATASET_RULES
from tal.seg_tst.modeling.segments import segments_of

logger = logging.getLogger(__name__)


def _dataset_section(cfg: Any) -> Any:
    for name in ("test", "val", "train"):
        section = getattr(cfg.data, name, None)
        if section is not None:
            return section
    return None


def class_names_for(args: argparse.Namespace, cfg: Any, num_classes: int) -> list[str]:
    """Class names from ``--mapping``, else the config's dataset ``mapping.txt``, else ``class_<k>``."""
    mapping_path = getattr(args, "mapping", None)
    section = _dataset_section(cfg)
    if mapping_path is None and section is not None and getattr(section, "root", None):
        cand = Path(section.root) / "mapping.txt"
        mapping_path = cand if cand.is_file() else None
    if mapping_path is None:
        return [f"class_{k}" for k in range(num_classes)]
    names = list(read_mapping(mapping_path))
    if len(names) != num_classes:
        raise ConfigError(f"--mapping {mapping_path}: {len(names)} classes, the model has {num_classes}")
    return names


def sample_rate_for(args: argparse.Namespace, cfg: Any) -> int:
    if getattr(args, "sample_rate", None):
        return int(args.sample_rate)
    section = _dataset_section(cfg)
    if section is None:
        return 1
    explicit = getattr(section, "sample_rate", None)
    if explicit:
        return int(explicit)
    rules = DATASET_RULES.get(getattr(section, "dataset", ""), {})
    return int(rules.get("sample_rate", 1))


class SegmentationInferencer:
    """``tal infer`` runner of the ``backbone-tst`` and ``seg-backbone`` models."""

    def add_arguments(self, parser: Any) -> None:
        for flag, kw in (
            (
                "--out",
                {"type": Path, "default": None, "metavar": "PRED.txt", "help": "refined labels (MS-TCN format)"},
            ),
            ("--backbone-out", {"type": Path, "default": None, "metavar": "PRED.txt", "help": "the backbone's labels"}),
            ("--mapping", {"type": Path, "default": None, "help": "mapping.txt (default: the config's dataset)"}),
            ("--sample-rate", {"type": int, "default": None, "help": "frames per model step (default: the dataset's)"}),
        ):
            try:
                parser.add_argument(flag, **kw)
            except argparse.ArgumentError:
                logger.debug("tal infer: %s is already defined by another inferencer", flag)

    def run(self, args: argparse.Namespace, model: torch.nn.Module, cfg: Any, registry: Registry) -> int:
        num_classes = int(getattr(model.adapter, "num_classes"))  # noqa: B009 - the adapter protocol
        names = class_names_for(args, cfg, num_classes)
        feat_dim = getattr(getattr(cfg.model, "backbone", None), "input_dim", None)
        feats = read_features(args.feat, layout="CT", expected_channels=feat_dim)
        sr = sample_rate_for(args, cfg)
        device = next(model.parameters()).device
        t_len = feats.shape[1]
        batch = {
            "features": feats.unsqueeze(0).to(device),
            "mask": torch.ones(1, 1, t_len, dtype=torch.bool, device=device),
            "labels": torch.zeros(1, t_len, dtype=torch.long, device=device),
            "sample_rate": sr,
            "video_ids": [args.feat.stem],
        }
        with torch.no_grad():
            pred = model(batch)[0]
        rows = pred if isinstance(pred, dict) else {"labels": pred}
        order = sorted(rows, key=lambda k: k != "backbone")  # the backbone's row above the refined one
        rows = {k: rows[k].cpu() for k in order}
        main_key = "refined" if "refined" in rows else "labels"
        gt = None
        if args.gt is not None:
            gt = torch.from_numpy(read_ground_truth(args.gt, names))
            if gt.numel() != t_len:
                raise DataFormatError(args.gt, f"{gt.numel()} labels but {t_len} feature frames in {args.feat}")
        if args.out is not None:
            write_prediction(args.out, rows[main_key].tolist(), names)
            print(f"wrote {args.out} ({main_key} labels, MS-TCN format)")
        if args.backbone_out is not None and "backbone" in rows:
            write_prediction(args.backbone_out, rows["backbone"].tolist(), names)
            print(f"wrote {args.backbone_out} (backbone labels)")
        fps = float(getattr(_dataset_section(cfg), "fps", 15.0) or 15.0)
        result = {"video": args.feat.stem, "frames": t_len, "fps": fps}
        for key, labels in rows.items():
            seg = segments_of(labels)
            result[key] = [
                {"label": names[int(c)], "start": s / fps, "end": e / fps}
                for c, s, e in zip(seg.labels.tolist(), seg.starts.tolist(), seg.ends.tolist(), strict=True)
            ]
            print(f"{key}: {seg.num_segments} segments")
            for item in result[key][:50]:
                print(f"  {item['start']:8.2f}s – {item['end']:8.2f}s  {item['label']}")
            if seg.num_segments > 50:
                print(f"  … {seg.num_segments - 50} more")
        if gt is not None:
            scores = {}
            for key, labels in rows.items():
                r = evaluate_segmentation([labels], [gt])
                scores[key] = {"F1@10": r.f1[0], "F1@25": r.f1[1], "F1@50": r.f1[2], "Edit": r.edit, "Acc": r.acc}
                print(f"{key} vs ground truth: " + ", ".join(f"{k} {v:.1f}" for k, v in scores[key].items()))
            result["scores"] = scores
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
            print(f"wrote {args.json}")
        fig = getattr(args, "figure", None)
        if fig is not None:
            bars = ({"ground truth": gt.numpy()} if gt is not None else {}) | {k: v.numpy() for k, v in rows.items()}
            save_label_bars(fig, bars, names, title=f"{args.feat.stem}: frame labels", fps=fps)
            print(f"wrote {fig}")
        return 0


INFERENCER = SegmentationInferencer()
