"""Search retrieval: BM25 on a 100k-passage world (build time, memory, index size, mmap load, query p50/p99;
target p50 <= 5 ms), then dense vs BM25 vs hybrid recall@5 of gold passages on held-out questions.

Recall is measured on the default suite's test split (OOD world and IID questions, 20k passages each):
with the oracle's per-hop queries (can a retriever find each hop's passage?) and with the raw question
(first-hop passage; for sequential multi-hop questions the answer passage is kept out of BM25's top 10 by
construction, so its raw-question recall shows how much a dense or hybrid retriever shortcuts the hops). Dense embeds the
20k-passage worlds once (minutes on 2 CPU cores), cached for later runs.

Run: python bench/search_retrieval.py [--passages 100000] [--no-dense]
     -> bench/results/search_retrieval.json
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from agentgym.envs.search.render import render_world  # noqa: E402
from agentgym.envs.search.retrieval import Bm25Index  # noqa: E402
from agentgym.envs.search.suite import load_search  # noqa: E402
from agentgym.envs.search.world import generate_world  # noqa: E402
from agentgym.stats import percentile  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99),
            "mean_ms": sum(values) / len(values)}


def bm25_at_scale(passages: int, queries: int) -> dict:
    out: dict = {"target_passages": passages}
    t0 = time.perf_counter()
    world = generate_world(99, passages)
    corpus = render_world(world)
    out["passages"] = len(corpus.passages)
    out["generate_render_s"] = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="agentgym-bench-search-"))
    try:
        rss0 = rss_mb()
        t0 = time.perf_counter()
        Bm25Index.build([p.contents for p in corpus.passages], tmp / "bm25")
        out["index_build_s"] = time.perf_counter() - t0
        out["index_build_peak_rss_mb"] = rss_mb()
        out["index_build_rss_growth_mb"] = rss_mb() - rss0
        out["index_disk_mb"] = sum(f.stat().st_size for f in (tmp / "bm25").rglob("*") if f.is_file()) / 2**20
        t0 = time.perf_counter()
        index = Bm25Index.load(tmp / "bm25")
        out["mmap_load_ms"] = (time.perf_counter() - t0) * 1000
        rng = random.Random(0)
        people = world.of_kind("person")
        orgs = world.of_kind("org")
        qs = [f"{rng.choice(people).name} born" if i % 3 == 0 else
              f"{rng.choice(orgs).name} founded by" if i % 3 == 1 else
              f"who founded {rng.choice(orgs).name} and where was the founder born" for i in range(queries)]
        index.search(qs[:10], 3)  # warm-up
        times = []
        for q in qs:
            t0 = time.perf_counter()
            index.search([q], 3)
            times.append((time.perf_counter() - t0) * 1000)
        out["query_latency_k3"] = latency(times)
        t0 = time.perf_counter()
        index.search(qs, 3)
        out["batched_qps"] = len(qs) / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def recall(dense: bool, limit: int) -> dict:
    data = load_search()
    tasks = data.suite.tasks("test")[:limit]
    modes = ["bm25"] + (["dense", "hybrid"] if dense else [])
    out: dict = {"questions": len(tasks), "k": 5}
    for mode in modes:
        t0 = time.perf_counter()
        hop_hits = hop_total = first_hits = answer_hits = multi_hop = 0
        times: list[float] = []
        for seed in sorted({t.params["world"] for t in tasks}):
            world = data.worlds[seed]
            retriever = world.retriever(mode)
            if mode != "bm25":
                world.dense().embeddings  # embed the world now (cached on disk), outside the timed queries
            mine = [t for t in tasks if t.params["world"] == seed]
            for t in mine:
                hops = t.data["hops"]
                for hop in hops:
                    s = time.perf_counter()
                    top = {world.ids[h.index] for h in retriever.search([hop["query"]], 5)[0]}
                    times.append((time.perf_counter() - s) * 1000)
                    hop_hits += hop["doc_id"] in top
                    hop_total += 1
                raw = {world.ids[h.index] for h in retriever.search([t.data["question"]], 5)[0]}
                first_hits += hops[0]["doc_id"] in raw
                if len(hops) > 1 and t.family != "comparison":  # sequential multi-hop: answer passage hidden by design
                    multi_hop += 1
                    answer_hits += hops[-1]["doc_id"] in raw
        out[mode] = {"hop_query_recall@5": hop_hits / hop_total, "raw_question_first_hop_recall@5": first_hits / len(tasks),
                     "raw_question_answer_passage_recall@5_multi_hop": answer_hits / max(1, multi_hop),
                     "query_latency_k5": latency(times), "wall_s_including_embedding": time.perf_counter() - t0}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=400, help="held-out questions for recall")
    parser.add_argument("--no-dense", action="store_true", help="skip dense and hybrid (no embedding pass)")
    args = parser.parse_args()
    scale = bm25_at_scale(args.passages, args.queries)
    print(f"BM25 on {scale['passages']} passages: p50 {scale['query_latency_k3']['p50_ms']:.2f} ms, "
          f"p99 {scale['query_latency_k3']['p99_ms']:.2f} ms, build {scale['index_build_s']:.1f} s", flush=True)
    rec = recall(not args.no_dense, args.questions)
    for mode in ("bm25", "dense", "hybrid"):
        if mode in rec:
            print(f"{mode}: hop-query recall@5 {rec[mode]['hop_query_recall@5']:.3f}, raw-question first-hop "
                  f"recall@5 {rec[mode]['raw_question_first_hop_recall@5']:.3f}", flush=True)
    write_results("search_retrieval", {"bm25_scale": scale, "recall": rec,
                                       "target": {"bm25_p50_ms_at_100k": 5.0},
                                       "meets_target": scale["query_latency_k3"]["p50_ms"] <= 5.0})


if __name__ == "__main__":
    main()
