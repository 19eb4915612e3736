"""Pairing annotated videos with their feature files and frame rates (shared by feature datasets)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tal.core.errors import DataFormatError
from tal.core.formats import VideoAnnotation, find_feature_file


@dataclass(frozen=True)
class LocatedVideo:
    """One annotated video, its feature file(s) (one per feature folder) and its frame rate."""

    video: VideoAnnotation
    paths: list[Path]
    fps: float


def locate_videos(
    videos: Iterable[VideoAnnotation],
    feature_dirs: Sequence[str | Path],
    *,
    annotation_file: str | Path,
    default_fps: float | None = None,
    prefix: str = "",
    suffix: str = "",
    ext: str = ".npy",
    skip_missing: bool = False,
) -> tuple[list[LocatedVideo], list[str]]:
    """Each video's feature files and fps, and the ids of the videos skipped for a missing file.

    ``default_fps``, when set, overrides a video's ``fps`` (ActionFormer's loaders do that); a video
    with neither is an error naming the annotation file. With ``skip_missing`` a video whose feature
    file is absent is skipped (THUMOS14's loader drops the few videos without features), provided
    every feature folder exists; otherwise a missing file is an error.
    """
    found: list[LocatedVideo] = []
    skipped: list[str] = []
    for video in videos:
        fps = default_fps if default_fps is not None else video.fps
        if fps is None:
            raise DataFormatError(
                annotation_file,
                "no 'fps' for this video and no default_fps in the config",
                f"database.{video.video_id}",
            )
        try:
            paths = [find_feature_file(d, video.video_id, prefix=prefix, suffix=suffix, ext=ext) for d in feature_dirs]
        except DataFormatError:
            if skip_missing and all(Path(d).is_dir() for d in feature_dirs):
                skipped.append(video.video_id)
                continue
            raise
        found.append(LocatedVideo(video, paths, float(fps)))
    return found, skipped
