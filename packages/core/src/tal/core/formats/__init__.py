"""Data-format readers and writers with strict validation.

Every reader raises :class:`~tal.core.errors.DataFormatError` naming the file and the entry at fault;
every writer writes atomically (:mod:`tal.core.formats.atomic`).
"""

from tal.core.formats.annotations import (
    DEFAULT_IGNORE_LABELS,
    AnnotationSet,
    VideoAnnotation,
    annotations_to_json,
    parse_annotations,
    read_annotations,
    write_annotations,
)
from tal.core.formats.atomic import atomic_open, atomic_write_bytes, atomic_write_text
from tal.core.formats.features import (
    FEATURE_EXTENSIONS,
    FeatureLayout,
    check_features,
    find_feature_file,
    read_features,
    write_features,
)
from tal.core.formats.labels import class_map, read_class_list
from tal.core.formats.mstcn import (
    PREDICTION_HEADER,
    read_bundle,
    read_frame_names,
    read_ground_truth,
    read_mapping,
    read_prediction,
    video_id_of,
    write_bundle,
    write_ground_truth,
    write_mapping,
    write_prediction,
)
from tal.core.formats.results import DetectionResults, parse_results, read_results, results_to_json, write_results

__all__ = [
    "DEFAULT_IGNORE_LABELS",
    "FEATURE_EXTENSIONS",
    "PREDICTION_HEADER",
    "AnnotationSet",
    "DetectionResults",
    "FeatureLayout",
    "VideoAnnotation",
    "annotations_to_json",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_features",
    "class_map",
    "find_feature_file",
    "parse_annotations",
    "parse_results",
    "read_annotations",
    "read_bundle",
    "read_class_list",
    "read_features",
    "read_frame_names",
    "read_ground_truth",
    "read_mapping",
    "read_prediction",
    "read_results",
    "results_to_json",
    "video_id_of",
    "write_annotations",
    "write_bundle",
    "write_features",
    "write_ground_truth",
    "write_mapping",
    "write_prediction",
    "write_results",
]
