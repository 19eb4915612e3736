"""The release's config files (configs/*.yaml) as parsed mappings: only the sections and keys each file sets.

Dataset paths and other keys the model does not read are kept where the file has them so that
:func:`load_official_config` is exercised on files as they are.
"""

from __future__ import annotations

from typing import Any

THUMOS_I3D: dict[str, Any] = {
    "dataset_name": "thumos",
    "train_split": ["validation"],
    "val_split": ["test"],
    "dataset": {
        "json_file": "./data/thumos/annotations/thumos14.json",
        "feat_folder": "./data/thumos/i3d_features",
        "file_prefix": None,
        "file_ext": ".npy",
        "num_classes": 20,
        "input_dim": 2048,
        "feat_stride": 4,
        "num_frames": 16,
        "trunc_thresh": 0.5,
        "crop_ratio": [0.9, 1.0],
        "max_seq_len": 2304,
    },
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 6.0, "n_mha_win_size": 19},
    "opt": {"learning_rate": 0.0001, "epochs": 45, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {
        "init_loss_norm": 100,
        "clip_grad_l2norm": 1.0,
        "cls_prior_prob": 0.01,
        "center_sample": "radius",
        "center_sample_radius": 1.5,
    },
    "test_cfg": {
        "voting_thresh": 0.7,
        "pre_nms_topk": 2000,
        "max_seg_num": 200,
        "min_score": 0.001,
        "multiclass_nms": False,
        "ext_score_file": "./data/thumos/annotations/thumos14_cls_scores.pkl",
    },
    "output_folder": "./ckpt/",
}

ANET_TSP: dict[str, Any] = {
    "dataset_name": "anet",
    "train_split": ["training"],
    "val_split": ["validation"],
    "dataset": {
        "json_file": "./data/anet_1.3/annotations/anet1.3_tsp_filtered.json",
        "feat_folder": "./data/anet_1.3/tsp_features",
        "file_prefix": "v_",
        "file_ext": ".npy",
        "num_classes": 1,
        "input_dim": 512,
        "feat_stride": 16,
        "num_frames": 16,
        "default_fps": 15,
        "trunc_thresh": 0.5,
        "crop_ratio": [0.9, 1.0],
        "max_seq_len": 768,
    },
    "model": {
        "fpn_type": "identity",
        "max_buffer_len_factor": 1.0,
        "n_mha_win_size": [25, 25, 25, 25, 25, -1],
        "n_head": 4,
        "embd_dim": 256,
        "fpn_dim": 256,
        "head_dim": 256,
        "use_abs_pe": True,
    },
    "opt": {"learning_rate": 0.001, "epochs": 10, "weight_decay": 0.05, "warmup_epochs": 5},
    "loader": {"batch_size": 16},
    "train_cfg": {
        "init_loss_norm": 400,
        "clip_grad_l2norm": 1.0,
        "cls_prior_prob": 0.01,
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "label_smoothing": 0.1,
    },
    "test_cfg": {
        "voting_thresh": 0.85,
        "pre_nms_topk": 2000,
        "max_seg_num": 100,
        "min_score": 0.001,
        "multiclass_nms": False,
        "nms_sigma": 0.8,
        "ext_score_file": "./data/anet_1.3/annotations/cuhk_val_simp_share.json",
        "duration_thresh": 0.1,
    },
    "output_folder": "./ckpt/",
}

ANET_I3D: dict[str, Any] = {
    "dataset_name": "anet",
    "train_split": ["training"],
    "val_split": ["validation"],
    "dataset": {
        "json_file": "./data/anet_1.3/annotations/anet1.3_i3d_filtered.json",
        "feat_folder": "./data/anet_1.3/i3d_features",
        "file_prefix": "v_",
        "file_ext": ".npy",
        "num_classes": 1,
        "input_dim": 2048,
        "feat_stride": 16,
        "num_frames": 16,
        "default_fps": 25,
        "trunc_thresh": 0.5,
        "crop_ratio": [0.9, 1.0],
        "max_seq_len": 192,
        "force_upsampling": True,
    },
    "model": {
        "fpn_type": "identity",
        "max_buffer_len_factor": 1.0,
        "n_mha_win_size": [7, 7, 7, 7, 7, -1],
        "n_head": 4,
        "embd_dim": 256,
        "fpn_dim": 256,
        "head_dim": 256,
        "use_abs_pe": True,
    },
    "opt": {"learning_rate": 0.001, "epochs": 10, "weight_decay": 0.05},
    "loader": {"batch_size": 16},
    "train_cfg": {
        "init_loss_norm": 200,
        "clip_grad_l2norm": 1.0,
        "cls_prior_prob": 0.01,
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "label_smoothing": 0.1,
        "droppath": 0.1,
        "loss_weight": 2.0,
    },
    "test_cfg": {
        "voting_thresh": 0.9,
        "pre_nms_topk": 2000,
        "max_seg_num": 100,
        "min_score": 0.001,
        "multiclass_nms": False,
        "nms_sigma": 0.75,
        "ext_score_file": "./data/anet_1.3/annotations/cuhk_val_simp_share.json",
        "duration_thresh": 0.001,
    },
    "output_folder": "./ckpt/",
}


def _epic(kind: str, num_classes: int, epochs: int) -> dict[str, Any]:
    return {
        "dataset_name": "epic",
        "train_split": ["training"],
        "val_split": ["validation"],
        "dataset": {
            "json_file": f"./data/epic_kitchens/annotations/epic_kitchens_100_{kind}.json",
            "feat_folder": "./data/epic_kitchens/features",
            "file_prefix": None,
            "file_ext": ".npz",
            "num_classes": num_classes,
            "input_dim": 2304,
            "feat_stride": 16,
            "num_frames": 32,
            "default_fps": 30,
            "trunc_thresh": 0.3,
            "crop_ratio": [0.9, 1.0],
            "max_seq_len": 2304,
        },
        "model": {
            "regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 10000]],
            "fpn_type": "identity",
            "max_buffer_len_factor": 4.0,
            "n_mha_win_size": 9,
        },
        "opt": {"learning_rate": 0.0001, "epochs": epochs, "weight_decay": 0.05},
        "loader": {"batch_size": 2},
        "train_cfg": {
            "init_loss_norm": 250,
            "clip_grad_l2norm": 1.0,
            "cls_prior_prob": 0.01,
            "center_sample": "radius",
            "center_sample_radius": 1.5,
        },
        "test_cfg": {
            "pre_nms_topk": 5000,
            "max_seg_num": 2000,
            "min_score": 0.001,
            "nms_sigma": 0.4,
            "multiclass_nms": True,
        },
        "output_folder": "./ckpt/",
    }


EPIC_SLOWFAST_VERB = _epic("verb", 97, 25)
EPIC_SLOWFAST_NOUN = _epic("noun", 300, 30)

EGO4D_OMNIVORE_EGOVLP: dict[str, Any] = {
    "dataset_name": "ego4d",
    "train_split": ["training"],
    "val_split": ["validation"],
    "dataset": {
        "json_file": "./data/ego4d/annotations/ego4d.json",
        "feat_folder": ["./data/ego4d/omnivore_features", "./data/ego4d/egovlp_features"],
        "file_prefix": None,
        "file_ext": ".npy",
        "num_classes": 110,
        "input_dim": 1792,
        "feat_stride": 16,
        "num_frames": 32,
        "default_fps": 30,
        "trunc_thresh": 0.3,
        "crop_ratio": [0.9, 1.0],
        "max_seq_len": 1024,
    },
    "model": {
        "regression_range": [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 128], [64, 256], [128, 10000]],
        "fpn_type": "identity",
        "backbone_arch": [2, 2, 7],
        "max_buffer_len_factor": 4.0,
        "n_mha_win_size": 9,
        "n_head": 12,
        "embd_dim": 768,
        "fpn_dim": 768,
        "head_dim": 768,
        "use_abs_pe": True,
    },
    "opt": {"learning_rate": 1.0e-4, "epochs": 10, "weight_decay": 0.05},
    "loader": {"batch_size": 2},
    "train_cfg": {
        "init_loss_norm": 100,
        "clip_grad_l2norm": 1.0,
        "cls_prior_prob": 0.01,
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "dropout": 0.1,
        "droppath": 0.1,
    },
    "test_cfg": {
        "pre_nms_topk": 5000,
        "max_seg_num": 2000,
        "min_score": 0.001,
        "nms_sigma": 0.9,
        "multiclass_nms": True,
        "voting_thresh": 0.95,
    },
    "output_folder": "./ckpt/",
}

RELEASE_CONFIGS: dict[str, dict[str, Any]] = {
    "thumos_i3d": THUMOS_I3D,
    "anet_tsp": ANET_TSP,
    "anet_i3d": ANET_I3D,
    "epic_slowfast_verb": EPIC_SLOWFAST_VERB,
    "epic_slowfast_noun": EPIC_SLOWFAST_NOUN,
    "ego4d_omnivore_egovlp": EGO4D_OMNIVORE_EGOVLP,
}

#: thumos_i3d.yaml verbatim (YAML flow mappings), to exercise reading a file
THUMOS_I3D_YAML = """\
dataset_name: thumos
train_split: ['validation']
val_split: ['test']
dataset: {
  json_file: ./data/thumos/annotations/thumos14.json,
  feat_folder: ./data/thumos/i3d_features,
  file_prefix: ~,
  file_ext: .npy,
  num_classes: 20,
  input_dim: 2048,
  feat_stride: 4,
  num_frames: 16,
  # serve as data augmentation
  trunc_thresh: 0.5,
  crop_ratio: [0.9, 1.0],
  max_seq_len: 2304,
}
model: {
  fpn_type: identity,
  max_buffer_len_factor: 6.0,
  n_mha_win_size: 19,
}
opt: {
  learning_rate: 0.0001,
  epochs: 45,
  weight_decay: 0.05,
}
loader: {
  batch_size: 2,
}
train_cfg: {
  init_loss_norm: 100,
  clip_grad_l2norm: 1.0,
  cls_prior_prob: 0.01,
  center_sample: radius,
  center_sample_radius: 1.5,
}
test_cfg: {
  voting_thresh: 0.7,
  pre_nms_topk: 2000,
  max_seg_num: 200,
  min_score: 0.001,
  multiclass_nms: False,
  ext_score_file: ./data/thumos/annotations/thumos14_cls_scores.pkl,
}
output_folder: ./ckpt/
"""
