"""``tal demo --only skeleton-lst``: LST on synthetic skeleton motions, on the CPU in under two minutes.

Six parametric motions on the NTU skeleton (:mod:`tal.skeleton_lst.data.synthetic`), described in
words (one synonym list and four part descriptions per class, embedded by the offline wordllama
encoder). A narrow LST (width 16 instead of 64) is trained with tal-core's ``Trainer`` on the joint
stream and, separately, on the bone stream (the bone model, ``k = 1``); held-out sequences are scored
for each stream and for their ensemble (joint + bone, the release's two-stream weights).
Writes ``results.json`` and ``skeleton.png`` (one sequence as stick figures) to the output folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tal.core.config import OptimizerConfig, SchedulerConfig, TrainConfig
from tal.core.engine.trainer import Trainer
from tal.core.metrics.recognition import RecognitionMetric, evaluate_recognition
from tal.skeleton_lst.data.datasets import SyntheticSkeletonConfig, SyntheticSkeletons
from tal.skeleton_lst.data.synthetic import CLASSES
from tal.skeleton_lst.ensemble import StreamScores, ensemble
from tal.skeleton_lst.graphs import GRAPHS
from tal.skeleton_lst.modeling.lst import LSTModel
from tal.skeleton_lst.modeling.text import ClassTexts, WordLlamaEncoder, embed_class_texts
from tal.skeleton_lst.models import build_model

__all__ = ["DEMO_TEXTS", "render_stick_figures", "run_demo"]

_DEMO_SYNONYMS = (
    ("wave right hand", "greet with the right hand", "hail", "wave hello"),
    ("wave left hand", "greet with the left hand", "signal goodbye", "wave"),
    ("squat down", "crouch", "bend the knees", "sit on the heels"),
    ("walk on the spot", "march in place", "step", "stride"),
    ("raise both arms", "lift the arms", "cheer", "hands up"),
    ("bend forward", "bow", "lean over", "stoop"),
)
_DEMO_PARTS = (  # head; hand, arm; hip; leg, foot (composed with the class name as LST's prompts)
    ("head stays still", "right hand swings, arm raised", "hip still", "legs still, feet planted"),
    ("head stays still", "left hand swings, arm raised", "hip still", "legs still, feet planted"),
    ("head moves down", "hands stay low, arms by the sides", "hips drop", "knees bend, feet flat"),
    ("head steady", "hands swing, arms alternate", "hips sway", "knees lift, feet step"),
    ("head still", "hands go up, arms lift sideways", "hip still", "legs still, feet planted"),
    ("head goes down", "hands move forward, arms hang", "hips fold", "legs straight, feet planted"),
)
#: synonyms (item 0 = name) and (head, hand, hip, foot) descriptions of the synthetic classes
DEMO_TEXTS = ClassTexts(
    "synthetic",
    CLASSES,
    _DEMO_SYNONYMS,
    tuple(
        (f"{name},{head}", f"{name} {hand}", f"{name},{hip}", f"{name},{foot}")
        for name, (head, hand, hip, foot) in zip(CLASSES, _DEMO_PARTS, strict=True)
    ),
)


def render_stick_figures(sequence: np.ndarray, path: Path, title: str, frames: int = 6) -> Path:
    """Draw ``frames`` evenly spaced frames of a ``(3, T, 25, M)`` sequence (x-y plane) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = sequence.shape[1]
    picks = np.linspace(0, t - 1, frames).astype(int)
    fig, axes = plt.subplots(1, frames, figsize=(2.0 * frames, 3.2), sharey=True)
    for ax, f in zip(np.atleast_1d(axes), picks, strict=True):
        joints = sequence[:, f, :, 0]  # (3, 25)
        for child, parent in GRAPHS["ntu"].inward:
            ax.plot(joints[0, [child, parent]], joints[1, [child, parent]], "-", color="tab:blue", lw=2)
        ax.plot(joints[0], joints[1], "o", color="tab:orange", ms=3)
        ax.set_title(f"frame {f}", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
    np.atleast_1d(axes)[0].set_ylabel("y (m)")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _train_stream(
    modality: str, train: SyntheticSkeletons, val: SyntheticSkeletons, epochs: int, out: Path, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    torch.manual_seed(seed)
    model = build_model("lst", len(CLASSES), "ntu", modality, text_dim=WordLlamaEncoder.dim, base_channel=16)
    assert isinstance(model, LSTModel)
    model.loss_alpha = 0.8
    model.set_text_bank(embed_class_texts(DEMO_TEXTS, WordLlamaEncoder()))
    config = TrainConfig(
        epochs=epochs,
        batch_size=16,
        eval_batch_size=32,
        optimizer=OptimizerConfig(name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4),
        scheduler=SchedulerConfig(name="cosine", warmup_epochs=1 if epochs > 2 else 0),
        eval_every=epochs,
        device="cpu",
        seed=seed,
        progress=False,
    )
    trainer = Trainer(model, train, val, RecognitionMetric(num_classes=len(CLASSES)), config, out / modality)
    metrics = trainer.fit()
    model.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(val.data)).numpy()
    return scores, metrics


def run_demo(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    """Train the joint and bone LST streams on synthetic motions; returns their accuracies and the ensemble's."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_class, frames, epochs = (2, 12, 1) if quick else (16, 24, 10)
    train = SyntheticSkeletons(SyntheticSkeletonConfig(num_per_class=per_class, num_frames=frames, seed=0))
    val = SyntheticSkeletons(SyntheticSkeletonConfig(num_per_class=max(2, per_class // 2), num_frames=frames, seed=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tiny tensors run faster on one thread, and much faster on a busy machine
    results: dict[str, Any] = {}
    streams = {}
    try:
        for modality in ("joint", "bone"):
            scores, _ = _train_stream(modality, train, val, epochs, out_dir, seed=0)
            streams[modality] = StreamScores(np.array([f"s{i}" for i in range(len(val))]), scores, val.labels)
            results[f"{modality} top1"] = evaluate_recognition(scores, val.labels, (1,)).topk[1]
    finally:
        torch.set_num_threads(threads)
    _, combined = ensemble(streams)
    results["ensemble top1"] = combined.topk[1]
    render_stick_figures(train.data[0], out_dir / "skeleton.png", f"synthetic '{CLASSES[int(train.labels[0])]}'")
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results
