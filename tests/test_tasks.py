"""Tasks: ids are hashes of the canonical form; splits are deterministic; near-duplicates are found."""

from __future__ import annotations

from agentgym.tasks import SplitRule, Task, TaskSuite, jaccard, near_duplicates, shingles


def test_task_id_is_a_hash_of_the_canonical_form_only():
    a = Task("sql", "retail", "filter_eq", {"table": "orders", "value": 3}, data={"question": "x"})
    b = Task("sql", "retail", "filter_eq", {"value": 3, "table": "orders"}, data={"question": "different payload"})
    assert a.id == b.id and a == b
    assert a.canonical() == '{"family":"retail","kind":"sql","params":{"table":"orders","value":3},"template":"filter_eq"}'
    assert a.id == "d8bc2b76779bda86"  # pinned: the id must never change across versions or machines
    assert Task("sql", "retail", "filter_eq", {"table": "orders", "value": 4}).id != a.id


def test_split_rule_ood_families_and_hashed_iid():
    rule = SplitRule(ood_test_families=frozenset({"c"}), ood_dev_families=frozenset({"b"}))
    tasks = [Task("k", fam, "t", {"i": i}) for fam in "abc" for i in range(400)]
    suite = TaskSuite("s", "v0", tasks, rule)
    assert {t.family for t in suite.tasks("test", "ood")} == {"c"}
    assert {t.family for t in suite.tasks("dev", "ood")} == {"b"}
    iid_test = suite.tasks("test", "iid")
    assert {t.family for t in iid_test} == {"a"}
    assert 20 <= len(iid_test) <= 60  # ~10% of 400
    assert not {t.id for t in suite.tasks("train")} & {t.id for t in suite.tasks("test")}
    # same rule, same tasks in another order: same manifests
    again = TaskSuite("s", "v0", list(reversed(tasks)), rule)
    assert again.manifest("test").checksum == suite.manifest("test").checksum


def test_group_key_keeps_near_duplicates_together():
    rule = SplitRule()
    tasks = [Task("k", "a", "t", {"group": g, "literal": i}, group=f"g{g}") for g in range(50) for i in range(5)]
    suite = TaskSuite("s", "v0", tasks, rule)
    for g in range(50):
        assert len({suite.split_of(t.id) for t in tasks if t.group == f"g{g}"}) == 1


def test_duplicate_tasks_are_refused():
    import pytest

    with pytest.raises(ValueError, match="duplicate task"):
        TaskSuite("s", "v0", [Task("k", "a", "t", {"x": 1}), Task("k", "a", "t", {"x": 1})], SplitRule())


def test_near_duplicates_by_shingle_jaccard():
    left = ["How many employees work in the Sales department?", "List all flights from Paris."]
    right = ["How many employees work in the Marketing department?", "Which books were never borrowed?",
             "list all flights from paris"]
    pairs = near_duplicates(left, right, threshold=0.8)
    assert [(i, j) for i, j, _ in pairs] == [(1, 2)]
    sim = jaccard(shingles(left[0]), shingles(right[0]))
    assert 0.3 < sim < 0.8
