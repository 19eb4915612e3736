"""Text side of LST: class descriptions, text encoders, and a disk cache of their embeddings.

The release encodes, for every class, a list of synonyms (the global prompt: one drawn at random per
sample) and four body-part descriptions (head, hand, hip, foot), all written by an LLM
(``text_data/*.txt``, Apache-2.0, copied verbatim from the LST repository). Here the descriptions
are embedded once by a :class:`TextEncoder` and the embeddings are kept fixed during training (the
release fine-tunes its CLIP text tower jointly): training never runs the encoder. The embeddings
are cached on disk, keyed by the encoder and the exact texts, and shipped precomputed inside the
package for NTU RGB+D 60/120 and NW-UCLA with the default encoder.

Encoders:

* ``wordllama`` (default): the 256-d ``l2_supercat`` model that the ``wordllama`` wheel ships,
  loaded from the installed package folder without any network access;
* ``clip``: OpenAI CLIP's text tower (ViT-B/32: 512-d, the release's) from a weights file the user
  already has (``clip.load(path)``); it is never downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from tal.core.errors import ConfigError, DataFormatError

__all__ = [
    "CLASS_SETS",
    "ClassTexts",
    "ClipTextConfig",
    "ClipTextEncoder",
    "TextBank",
    "TextEmbeddingCache",
    "TextEncoder",
    "WordLlamaConfig",
    "WordLlamaEncoder",
    "build_text_encoder",
    "class_texts",
    "default_cache_dir",
    "embed_class_texts",
    "load_text_bank",
    "shipped_embeddings_path",
]

logger = logging.getLogger(__name__)

TEXT_PACKAGE = "tal.skeleton_lst.text_data"
#: class set -> (synonym file, part-description file, number of classes taken from the top)
CLASS_SETS: dict[str, tuple[str, str, int]] = {
    "ntu60": ("synonym_openai_t01.txt", "pasta_openai_t01.txt", 60),
    "ntu120": ("synonym_openai_t01.txt", "pasta_openai_t01.txt", 120),
    "ucla": ("ucla_synonym_openai_t01.txt", "ucla_pasta_openai_t01.txt", 10),
}


# -- class descriptions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassTexts:
    """The prompts of a class set: ``synonyms[c]`` (item 0 is the class name) and ``parts[c]`` =
    (head, hand, hip, foot) descriptions, built as the release's ``Text_Prompt.py`` does."""

    name: str
    class_names: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]
    parts: tuple[tuple[str, str, str, str], ...]

    def all_texts(self) -> list[str]:
        """Every text to embed: all synonyms of all classes, then 4 part prompts per class."""
        return [s for syn in self.synonyms for s in syn] + [p for four in self.parts for p in four]

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.all_texts()).encode("utf-8")).hexdigest()


def _read_lines(filename: str) -> list[str]:
    text = resources.files(TEXT_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def part_prompts(fields: Sequence[str]) -> tuple[str, str, str, str]:
    """(head, hand, hip, foot) prompts from a description split on ``;`` into
    ``name; head; hand; arm; hip; leg; foot``: ``name,head``, ``name`` + ``hand,arm`` (no comma after
    the name, as the release), ``name,hip``, ``name,leg,foot``."""
    if len(fields) < 7:
        raise ValueError(
            f"a part description needs 7 ';'-separated fields (name;head;hand;arm;hip;leg;foot), got {len(fields)}"
        )
    name = fields[0]
    return (
        name + "," + fields[1],
        name + ",".join(fields[2:4]),
        name + "," + fields[4],
        name + "," + ",".join(fields[5:]),
    )


def class_texts(class_set: str) -> ClassTexts:
    """The packaged LST descriptions of ``ntu60``, ``ntu120`` or ``ucla``."""
    if class_set not in CLASS_SETS:
        raise ConfigError(f"unknown class set {class_set!r}; known: {', '.join(CLASS_SETS)}")
    syn_file, part_file, count = CLASS_SETS[class_set]
    syn_lines = _read_lines(syn_file)[:count]
    part_lines = _read_lines(part_file)[:count]
    if len(syn_lines) != count or len(part_lines) != count:
        raise DataFormatError(TEXT_PACKAGE, f"{class_set}: expected {count} classes in {syn_file} and {part_file}")
    synonyms = tuple(tuple(line.split(",")) for line in syn_lines)
    parts = tuple(part_prompts(line.split(";")) for line in part_lines)
    names = tuple(p.split(";")[0] for p in part_lines)
    return ClassTexts(class_set, names, synonyms, parts)


# -- encoders ---------------------------------------------------------------------------------------
@runtime_checkable
class TextEncoder(Protocol):
    """Embeds texts: ``embed(texts) -> (n, dim)`` float32. ``identity`` names the exact model (cache key)."""

    identity: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class WordLlamaConfig(BaseModel):
    """The default encoder: wordllama's bundled 256-d ``l2_supercat`` embeddings (offline)."""

    model_config = ConfigDict(extra="forbid")
    name: Literal["wordllama"] = "wordllama"
    dim: Literal[256] = 256


class ClipTextConfig(BaseModel):
    """OpenAI CLIP's text tower from a local weights file (``clip.load(weights)``; never downloaded)."""

    model_config = ConfigDict(extra="forbid")
    name: Literal["clip"] = "clip"
    weights: str = Field(..., description="path to a CLIP checkpoint file such as ViT-B-32.pt")
    dim: int = Field(512, ge=1, description="text width: 512 for ViT-B/32 and ViT-B/16, 768 for ViT-L/14")


class WordLlamaEncoder:
    """wordllama ``l2_supercat`` (256-d), loaded from the files its wheel ships."""

    identity = "wordllama-l2_supercat-256"
    dim = 256

    def __init__(self) -> None:
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as exc:
            raise ConfigError(
                "the wordllama text encoder needs the `wordllama` package (pip install wordllama)"
            ) from exc
        folder = Path(wordllama.__file__).parent
        try:  # its cache layout is <cache_dir>/weights and <cache_dir>/tokenizers: the package folder itself
            self._model = WordLlama.load(config="l2_supercat", dim=256, cache_dir=folder, disable_download=True)
        except Exception as exc:
            raise ConfigError(f"could not load wordllama's bundled model from {folder}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.embed(list(texts), norm=False), dtype=np.float32)


class ClipTextEncoder:
    """CLIP's ``encode_text`` from a local checkpoint (needs the ``clip`` package)."""

    def __init__(self, weights: str | Path, dim: int = 512) -> None:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(
                f"model.text_encoder.weights: CLIP weights file {path} not found (tal never downloads it)"
            )
        try:
            import clip
        except ImportError as exc:
            raise ConfigError("the clip text encoder needs OpenAI's `clip` package installed") from exc
        self._model, _ = clip.load(str(path), device="cpu", jit=False)
        self._tokenize = clip.tokenize
        self.identity = f"clip-{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        self.dim = dim

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self._tokenize(list(texts), truncate=True)
        out = self._model.encode_text(tokens).float().numpy()
        if out.shape[1] != self.dim:
            raise ConfigError(f"model.text_encoder.dim is {self.dim} but the CLIP model gives {out.shape[1]}-d texts")
        return out


def build_text_encoder(config: WordLlamaConfig | ClipTextConfig) -> TextEncoder:
    """The encoder a config names."""
    if isinstance(config, WordLlamaConfig):
        return WordLlamaEncoder()
    return ClipTextEncoder(config.weights, config.dim)


def encoder_identity(config: WordLlamaConfig | ClipTextConfig) -> str | None:
    """The cache identity of an encoder known without loading it (``None`` for CLIP: it hashes its file)."""
    return WordLlamaEncoder.identity if isinstance(config, WordLlamaConfig) else None


# -- embeddings, cache and bank ------------------------------------------------------------------------
@dataclass
class TextBank:
    """Fixed text features of a class set: ``synonyms (S, D)`` with ``synonym_class (S,)`` and
    ``parts (K, 4, D)`` (head, hand, hip, foot)."""

    synonyms: np.ndarray
    synonym_class: np.ndarray
    parts: np.ndarray
    identity: str
    digest: str

    @property
    def dim(self) -> int:
        return int(self.parts.shape[-1])

    @property
    def num_classes(self) -> int:
        return int(self.parts.shape[0])

    def arrays(self) -> dict[str, Any]:
        return {
            "synonyms": self.synonyms,
            "synonym_class": self.synonym_class,
            "parts": self.parts,
            "identity": np.array(self.identity),
            "digest": np.array(self.digest),
        }


def embed_class_texts(texts: ClassTexts, encoder: TextEncoder) -> TextBank:
    """Embed every prompt of ``texts`` with ``encoder`` (one call)."""
    flat = texts.all_texts()
    emb = np.asarray(encoder.embed(flat), dtype=np.float32)
    if emb.shape != (len(flat), encoder.dim):
        raise ValueError(f"{encoder.identity} returned {emb.shape}, expected ({len(flat)}, {encoder.dim})")
    n_syn = sum(len(s) for s in texts.synonyms)
    syn_class = np.concatenate([np.full(len(s), c, np.int64) for c, s in enumerate(texts.synonyms)])
    parts = emb[n_syn:].reshape(len(texts.parts), 4, encoder.dim)
    return TextBank(emb[:n_syn], syn_class, parts, encoder.identity, texts.digest())


def _bank_from_npz(path: Path) -> TextBank:
    with np.load(path, allow_pickle=False) as z:
        return TextBank(
            z["synonyms"].astype(np.float32),
            z["synonym_class"].astype(np.int64),
            z["parts"].astype(np.float32),
            str(z["identity"]),
            str(z["digest"]),
        )


def default_cache_dir() -> Path:
    """``$TAL_CACHE_DIR/skeleton_lst/text`` (default ``~/.cache/tal/skeleton_lst/text``)."""
    root = os.environ.get("TAL_CACHE_DIR") or Path.home() / ".cache" / "tal"
    return Path(root) / "skeleton_lst" / "text"


class TextEmbeddingCache:
    """Text banks on disk, one ``.npz`` per (encoder, exact texts)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path(self, identity: str, texts: ClassTexts) -> Path:
        return self.directory / f"{texts.name}-{identity}-{texts.digest()[:16]}.npz"

    def get(self, identity: str, texts: ClassTexts) -> TextBank | None:
        path = self.path(identity, texts)
        if not path.is_file():
            return None
        try:
            bank = _bank_from_npz(path)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("%s: unreadable cached text embeddings (%s); recomputing", path, exc)
            return None
        if bank.identity != identity or bank.digest != texts.digest():
            return None
        return bank

    def put(self, bank: TextBank, texts: ClassTexts) -> Path:
        from tal.core.formats.atomic import atomic_open

        path = self.path(bank.identity, texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.savez(f, **bank.arrays())
        return path


def shipped_embeddings_path(class_set: str, identity: str = WordLlamaEncoder.identity) -> Path:
    """Where the package ships the precomputed bank of ``class_set`` (NTU60 uses NTU120's first 60 classes)."""
    source = "ntu120" if class_set == "ntu60" else class_set
    return Path(str(resources.files(TEXT_PACKAGE).joinpath(f"{source}-{identity}.npz")))


def _take_classes(bank: TextBank, count: int, digest: str) -> TextBank:
    keep = bank.synonym_class < count
    return TextBank(bank.synonyms[keep], bank.synonym_class[keep], bank.parts[:count], bank.identity, digest)


def load_text_bank(
    class_set: str,
    encoder: WordLlamaConfig | ClipTextConfig | None = None,
    cache: TextEmbeddingCache | None = None,
) -> TextBank:
    """The text bank of ``class_set``: shipped with the package, else cached, else embedded now and cached."""
    encoder = encoder if encoder is not None else WordLlamaConfig()
    texts = class_texts(class_set)
    identity = encoder_identity(encoder)
    if identity is not None:
        shipped = shipped_embeddings_path(class_set, identity)
        if shipped.is_file():
            source = "ntu120" if class_set == "ntu60" else class_set
            bank = _bank_from_npz(shipped)
            if bank.digest == class_texts(source).digest():
                return _take_classes(bank, 60, texts.digest()) if class_set == "ntu60" else bank
            logger.warning("%s: shipped embeddings do not match the packaged texts; recomputing", shipped)
    cache = cache if cache is not None else TextEmbeddingCache()
    if identity is not None:
        hit = cache.get(identity, texts)
        if hit is not None:
            return hit
    model = build_text_encoder(encoder)
    hit = cache.get(model.identity, texts)
    if hit is not None:
        return hit
    logger.info("embedding %d %s class descriptions with %s", len(texts.all_texts()), class_set, model.identity)
    bank = embed_class_texts(texts, model)
    path = cache.put(bank, texts)
    logger.info("cached text embeddings in %s", path)
    return bank
