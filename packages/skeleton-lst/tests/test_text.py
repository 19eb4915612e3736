"""Class descriptions, the wordllama encoder, the embedding cache and the shipped embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED

from tal.skeleton_lst.modeling.text import (
    TextEmbeddingCache,
    WordLlamaConfig,
    WordLlamaEncoder,
    class_texts,
    embed_class_texts,
    load_text_bank,
    part_prompts,
    shipped_embeddings_path,
)


def test_part_prompts_as_the_release_builds_them() -> None:
    line = "drink water;head tilts back; hand grasps cup; arm lifts cup; hip still; leg still; foot still."
    fields = line.split(";")
    head, hand, hip, foot = part_prompts(fields)
    assert head == "drink water,head tilts back"
    assert hand == "drink water hand grasps cup, arm lifts cup"  # no comma after the name
    assert hip == "drink water, hip still"
    assert foot == "drink water, leg still, foot still."


def test_class_sets() -> None:
    ntu120, ntu60, ucla = class_texts("ntu120"), class_texts("ntu60"), class_texts("ucla")
    assert len(ntu120.class_names) == 120 and len(ntu60.class_names) == 60 and len(ucla.class_names) == 10
    assert ntu60.class_names == ntu120.class_names[:60]
    assert ntu120.synonyms[0][0] == "drink water" and ntu120.class_names[0] == "drink water"
    assert ucla.class_names[0] == "pick up with one hand"
    shared = SHARED / "data" / "skeleton" / "class_names"
    if shared.is_dir():
        want = [ln.strip() for ln in (shared / "ntu120.txt").read_text().splitlines() if ln.strip()]
        assert list(ntu120.class_names) == want
        want_ucla = [ln.strip() for ln in (shared / "nw_ucla.txt").read_text().splitlines() if ln.strip()]
        assert list(ucla.class_names) == want_ucla


def test_wordllama_loads_offline_and_separates_meanings() -> None:
    enc = WordLlamaEncoder()
    e = enc.embed(["drink water", "a person drinks from a cup", "kicking a ball"])
    assert e.shape == (3, 256) and e.dtype == np.float32
    cos = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (e[0] / np.linalg.norm(e[0]))
    assert cos[1] > cos[2] + 0.2


class CountingEncoder:
    identity = "counting-test"
    dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return np.stack([[len(t), t.count(" "), t.count(","), 1.0] for t in texts]).astype(np.float32)


def test_embedding_cache_round_trip(tmp_path: Path) -> None:
    texts = class_texts("ucla")
    enc = CountingEncoder()
    bank = embed_class_texts(texts, enc)
    assert bank.parts.shape == (10, 4, 4) and len(bank.synonyms) == sum(len(s) for s in texts.synonyms)
    assert bank.synonym_class.tolist() == [c for c, s in enumerate(texts.synonyms) for _ in s]
    # part embeddings are those of the (head, hand, hip, foot) prompts
    np.testing.assert_allclose(bank.parts[3, 1], enc.embed([texts.parts[3][1]])[0])
    cache = TextEmbeddingCache(tmp_path)
    assert cache.get(enc.identity, texts) is None
    path = cache.put(bank, texts)
    assert path.is_file()
    again = cache.get(enc.identity, texts)
    assert again is not None
    np.testing.assert_array_equal(again.synonyms, bank.synonyms)
    assert cache.get("other-encoder", texts) is None


def test_shipped_embeddings_match_the_encoder(tmp_path: Path) -> None:
    for class_set in ("ntu120", "ucla"):
        assert shipped_embeddings_path(class_set).is_file()
    bank = load_text_bank("ucla", WordLlamaConfig(), TextEmbeddingCache(tmp_path))
    fresh = embed_class_texts(class_texts("ucla"), WordLlamaEncoder())
    np.testing.assert_allclose(bank.parts, fresh.parts, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bank.synonyms, fresh.synonyms, rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.iterdir())  # shipped: nothing computed or cached
    ntu60 = load_text_bank("ntu60", WordLlamaConfig(), TextEmbeddingCache(tmp_path))
    ntu120 = load_text_bank("ntu120", WordLlamaConfig(), TextEmbeddingCache(tmp_path))
    assert ntu60.num_classes == 60
    np.testing.assert_array_equal(ntu60.parts, ntu120.parts[:60])


def test_clip_needs_a_local_file(tmp_path: Path) -> None:
    from tal.core.errors import ConfigError
    from tal.skeleton_lst.modeling.text import ClipTextConfig, build_text_encoder

    with pytest.raises(ConfigError, match="not found"):
        build_text_encoder(ClipTextConfig(weights=str(tmp_path / "ViT-B-32.pt")))
