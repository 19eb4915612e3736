"""``tal infer`` for ``ctrgcn`` and ``lst`` models: classify one skeleton sequence.

``--feat`` is a raw NTU ``.skeleton`` file (the NTU pipeline, then the test feeder: centred 95 %
crop resized to the config's window), an NW-UCLA ``.json`` file (the release's validation feeder)
or an ``.npy`` array ``(C, T, V, M)`` already prepared. The modality of the config's validation data
is applied. Prints the top classes; ``--json`` writes them, ``--save-fig`` draws the sequence as
stick figures, ``--gt`` (a class index or name) marks whether the top class is right.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core.errors import ConfigError, DataFormatError
from tal.core.registry import Registry

__all__ = ["SkeletonInferencer", "load_sample"]


def _data_config(cfg: Any) -> Any:
    return cfg.data.val or cfg.data.test or cfg.data.train


def load_sample(path: Path, cfg: Any) -> np.ndarray:
    """The model input ``(C, T, V, M)`` float32 of one file (see the module docstring)."""
    from tal.skeleton_lst.data.transforms import apply_modality, valid_crop_resize, valid_frames
    from tal.skeleton_lst.graphs import BONE_PAIRS

    data_cfg = _data_config(cfg)
    modality = getattr(data_cfg, "modality", "joint")
    suffix = path.suffix.lower()
    if suffix == ".json":
        from tal.skeleton_lst.data.ucla import read_nw_ucla, ucla_eval_transform

        joints, _ = read_nw_ucla(path)
        return ucla_eval_transform(joints, modality).astype(np.float32)
    if suffix == ".skeleton":
        from tal.skeleton_lst.data.ntu_pipeline import preprocess
        from tal.skeleton_lst.data.ntu_skeleton import read_ntu_skeleton

        row = preprocess(read_ntu_skeleton(path))  # (300, 150)
        x = row.reshape(300, 2, 25, 3).transpose(3, 0, 2, 1)  # (C, T, V, M)
        window = getattr(data_cfg, "window_size", 64)
        x = valid_crop_resize(x, valid_frames(x), [0.95], window)
        return apply_modality(x, modality, BONE_PAIRS["ntu"]).astype(np.float32)
    if suffix == ".npy":
        x = np.load(path, allow_pickle=False)
        if x.ndim != 4:
            raise DataFormatError(path, f"expected a (C, T, V, M) array, got shape {x.shape}")
        return x.astype(np.float32)
    raise DataFormatError(path, "expected an NTU .skeleton file, an NW-UCLA .json file or a (C, T, V, M) .npy array")


def _class_names(cfg: Any, num_class: int) -> list[str]:
    from tal.skeleton_lst.config import default_class_set
    from tal.skeleton_lst.modeling.text import class_texts

    dataset = getattr(cfg.model, "dataset", "ntu")
    class_set = getattr(cfg.model, "class_set", None) or default_class_set(dataset, num_class)
    names = list(class_texts(class_set).class_names)
    return names if len(names) == num_class else [f"class {i}" for i in range(num_class)]


class SkeletonInferencer:
    """The ``tal infer`` runner of ``ctrgcn`` / ``lst`` models."""

    help = "classify one skeleton sequence (.skeleton, .json or .npy)"

    def add_arguments(self, parser: Any) -> None:
        if "--top" in parser._option_string_actions:  # registered for ctrgcn and lst: the flag is shared
            return
        parser.add_argument("--top", type=int, default=5, help="how many classes to print (skeleton models)")

    def run(self, args: argparse.Namespace, model: Any, cfg: Any, registry: Registry) -> int:
        x = load_sample(Path(args.feat), cfg)
        device = next(model.parameters()).device
        with torch.no_grad():
            logits = model(torch.from_numpy(x)[None].to(device))[0].float().cpu()
        probs = torch.softmax(logits, 0)
        names = _class_names(cfg, len(logits))
        k = min(int(getattr(args, "top", 5)), len(logits))
        top = torch.topk(probs, k)
        rows = [
            {"class": int(i), "name": names[int(i)], "score": float(p)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]
        gt = None
        if args.gt is not None:
            text = str(args.gt)
            gt = int(text) if text.isdigit() else (names.index(text) if text in names else None)
            if gt is None:
                raise ConfigError(f"--gt: {text!r} is neither a class index nor a class name")
        for r in rows:
            mark = " (ground truth)" if gt == r["class"] else ""
            print(f"{r['score']:.3f}  {r['class']:>3}  {r['name']}{mark}")
        result = {"file": str(args.feat), "top": rows, "ground_truth": gt}
        if args.json is not None:
            Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        if getattr(args, "figure", None) is not None and x.shape[2] == 25:
            from tal.skeleton_lst.demo import render_stick_figures

            render_stick_figures(x, Path(args.figure), f"predicted: {rows[0]['name']}")
        return 0
