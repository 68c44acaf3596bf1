"""Retrieval: one tokeniser for index and query, BM25 saved and memory-mapped, dense and hybrid search,
and the Search-R1 compatible /retrieve endpoint."""

from __future__ import annotations

import socket

import httpx
import numpy as np
import pytest

from agentgym.envs.search.retrieval import Bm25Index, DenseIndex, Hit, Retriever, reciprocal_rank_fusion, tokenize
from agentgym.envs.search.server import RetrievalServer
from agentgym.envs.search.suite import SearchConfig, load_search

TEXTS = ["Varen Holt\nVaren Holt was born in Tarnhaven.", "Tarnhaven\nTarnhaven is a city in Veloria.",
         "Holt Press\nHolt Press is a publishing house founded in 1921.", "Veloria\nVeloria is a country."]


@pytest.fixture(scope="module")
def small():
    return load_search(SearchConfig.small())


def test_tokenizer_lowercases_drops_stopwords_and_stems():
    assert tokenize("The Founders FOUNDED the city of Tarnhaven") == ["founder", "found", "citi", "tarnhaven"]
    assert tokenize("a an the of") == [] and tokenize("") == []
    assert tokenize("Ürümqi 北京") == ["ürümqi", "北京"]


def test_bm25_index_is_saved_atomically_and_loads_memory_mapped(tmp_path):
    built = Bm25Index.build(TEXTS, tmp_path / "idx")
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    loaded = Bm25Index.load(tmp_path / "idx")
    assert isinstance(loaded._retriever.scores["data"], np.memmap)
    q = ["where was Varen Holt born", "publishing house", "country Veloria"]
    assert [[h.index for h in r] for r in loaded.search(q, 2)] == [[h.index for h in r] for r in built.search(q, 2)]
    assert [r[0].index for r in loaded.search(q, 2)] == [0, 2, 3]
    assert loaded.search(["the of", "qqqzzz"], 3) == [[], []]
    again = Bm25Index.build(["something else"], tmp_path / "idx")  # an existing index is reused, not rebuilt
    assert again.size == len(TEXTS)


def test_bm25_finds_the_gold_passage_of_the_oracle_hop_queries(small):
    hits = total = 0
    for t in small.suite.tasks("test")[:150]:
        world = small.worlds[t.params["world"]]
        for hop in t.data["hops"]:
            top = world.bm25.search([hop["query"]], 3)[0]
            hits += hop["doc_id"] in {world.ids[h.index] for h in top}
            total += 1
    assert hits / total >= 0.95, hits / total


def test_reciprocal_rank_fusion_by_hand():
    a = [Hit(1, 9.0), Hit(2, 5.0), Hit(3, 1.0)]
    b = [Hit(3, 0.9), Hit(1, 0.8)]
    fused = reciprocal_rank_fusion([a, b], k=3, rrf_k=60)
    assert [h.index for h in fused] == [1, 3, 2]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)


def test_dense_and_hybrid_search_with_the_bundled_model(tmp_path):
    texts = TEXTS + [f"Filler {i}\nA passage about gardening and tide pools number {i}." for i in range(40)]
    dense = DenseIndex(texts, tmp_path / "dense")
    top = dense.search(["In which city was Varen Holt born?", "a nation called Veloria", "   "], 2)
    assert top[0][0].index == 0 and top[1][0].index in (1, 3) and top[2] == []
    assert (tmp_path / "dense" / "minilm.npy").exists()
    reloaded = DenseIndex(texts, tmp_path / "dense")
    assert np.allclose(reloaded.embeddings, dense.embeddings)
    bm25 = Bm25Index.build(texts, tmp_path / "bm25")
    hybrid = Retriever(bm25, dense, "hybrid").search(["Holt Press publishing house"], 3)[0]
    assert hybrid[0].index == 2
    with pytest.raises(ValueError):
        Retriever(bm25, None, "dense")


def test_retrieve_endpoint_speaks_the_search_r1_payload(small):
    world = small.worlds[small.config.train_seed]
    task = small.suite.tasks("train")[0]
    hop = task.data["hops"][0]
    with RetrievalServer(world) as server:
        with httpx.Client(timeout=10) as client:
            r = client.post(server.url, json={"queries": [hop["query"], "the of"], "topk": 3, "return_scores": True})
            assert r.status_code == 200
            result = r.json()["result"]
            assert len(result) == 2 and result[1] == []
            first = result[0]
            ids = [d["document"]["id"] for d in first]
            assert ids == [world.ids[h.index] for h in world.bm25.search([hop["query"]], 3)[0]] and hop["doc_id"] in ids
            assert first[0]["document"]["contents"] == world.contents(world.position[ids[0]])
            assert first[0]["document"]["contents"].split("\n")[0] == world.titles[world.position[ids[0]]]
            assert [d["score"] for d in first] == sorted((d["score"] for d in first), reverse=True)
            plain = client.post(server.url, json={"queries": [hop["query"]], "topk": 2}).json()["result"][0]
            assert set(plain[0]) == {"id", "contents"} and len(plain) == 2
            assert client.post(server.url, json={"queries": "oops"}).status_code == 400
            assert client.post(server.url, json={"queries": ["x"], "topk": 0}).status_code == 400
            assert client.post(server.url, content=b"{not json").status_code == 400
            assert client.post(server.url.replace("/retrieve", "/other"), json={}).status_code == 404
        port = int(server.url.split(":")[2].split("/")[0])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not server._thread.is_alive()
