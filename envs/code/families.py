"""The generated task families of ``agentgym/code-v0``: spec, signature, reference solution, inputs, edge cases.

A family groups templates of one skill (string transforms, parsing, arrays, intervals, simulation, dynamic
programming, grids, date/number formatting, stdin/stdout statistics, geometry). A template is one problem
with a few variants (its constants); each (template, variant) is a task. The reference solution is source code
with ``$name`` placeholders for the variant's constants: the oracle submits it and the host runs it to compute
the expected outputs of the hidden tests (random inputs from ``gen`` plus the template's ``edges``).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Gen = Callable[[random.Random, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Template:
    """One problem: call-based (``entry(*args)``) or stdio (``solve(stdin_text) -> stdout_text`` in the reference)."""

    family: str
    name: str
    entry: str
    signature: str                       # shown to the agent (call mode) ; "" for stdio
    spec: str                            # string.Template text with $params
    source: str                          # reference solution, string.Template text with $params
    variants: tuple[Mapping[str, Any], ...]
    gen: Gen                             # random input: a list of args (call) or the stdin text (stdio)
    edges: Callable[[Mapping[str, Any]], Sequence[Any]]
    mode: str = "call"
    float_tol: float | None = None
    difficulty: str = "easy"

    def render(self, text: str, params: Mapping[str, Any]) -> str:
        return string.Template(text).substitute({k: v for k, v in params.items()})


STDIO_MAIN = "\n\nimport sys\nsys.stdout.write(solve(sys.stdin.read()))\n"


def _word(rng: random.Random, alphabet: str = string.ascii_lowercase, lo: int = 1, hi: int = 8) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def _ints(rng: random.Random, n_lo: int, n_hi: int, lo: int, hi: int) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(rng.randint(n_lo, n_hi))]


def _intervals(rng: random.Random, n_hi: int = 8, span: int = 30) -> list[list[int]]:
    out = []
    for _ in range(rng.randint(0, n_hi)):
        a = rng.randint(0, span)
        out.append([a, a + rng.randint(0, 8)])
    return out


def _grid(rng: random.Random, wall: float = 0.3) -> list[str]:
    rows, cols = rng.randint(1, 7), rng.randint(1, 7)
    return ["".join("#" if rng.random() < wall else "." for _ in range(cols)) for _ in range(rows)]


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1900, 2099):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _points(rng: random.Random, n_lo: int = 2, n_hi: int = 8) -> list[list[float]]:
    return [[round(rng.uniform(-10, 10), 3), round(rng.uniform(-10, 10), 3)] for _ in range(rng.randint(n_lo, n_hi))]


TEMPLATES: tuple[Template, ...] = (
    # --- strings ---------------------------------------------------------------------------------
    Template(
        "strings", "caesar", "shift_letters", "def shift_letters(s: str) -> str",
        "Shift every ASCII letter of s forward by $k places in the alphabet, wrapping from z to a, keeping its case; "
        "leave all other characters unchanged.",
        "def shift_letters(s):\n    out = []\n    for ch in s:\n        if 'a' <= ch <= 'z':\n"
        "            out.append(chr((ord(ch) - 97 + $k) % 26 + 97))\n        elif 'A' <= ch <= 'Z':\n"
        "            out.append(chr((ord(ch) - 65 + $k) % 26 + 65))\n        else:\n            out.append(ch)\n"
        "    return ''.join(out)\n",
        ({"k": 1}, {"k": 3}, {"k": 7}, {"k": 13}),
        lambda r, p: [_word(r, string.ascii_letters + " ,.!?", 0, 30)],
        lambda p: [[""], ["zZ"], ["Hello, World!"], ["xyz XYZ 123"]]),
    Template(
        "strings", "run_length", "compress", "def compress(s: str) -> str",
        "Run-length encode s: each maximal run of one repeated character becomes $how. $ones",
        "def compress(s):\n    out = []\n    i = 0\n    while i < len(s):\n        j = i\n"
        "        while j < len(s) and s[j] == s[i]:\n            j += 1\n        n = j - i\n"
        "        if n == 1 and $keep_one:\n            out.append(s[i])\n        else:\n"
        "            out.append($piece)\n        i = j\n    return ''.join(out)\n",
        ({"how": "the character followed by the run length", "piece": "s[i] + str(n)", "keep_one": True,
          "ones": "A run of length 1 is written as the character alone."},
         {"how": "the character followed by the run length", "piece": "s[i] + str(n)", "keep_one": False,
          "ones": "Runs of length 1 also get their count."},
         {"how": "the run length followed by the character", "piece": "str(n) + s[i]", "keep_one": True,
          "ones": "A run of length 1 is written as the character alone."},
         {"how": "the run length followed by the character", "piece": "str(n) + s[i]", "keep_one": False,
          "ones": "Runs of length 1 also get their count."}),
        lambda r, p: ["".join(r.choice("abc") * r.randint(1, 4) for _ in range(r.randint(0, 8)))],
        lambda p: [[""], ["a"], ["aaaaaaaaaaaa"], ["abcabc"]]),
    Template(
        "strings", "kth_upper", "kth_upper", "def kth_upper(s: str) -> str",
        "Counting only alphabetic characters (from 1), upper-case every $k-th letter of s and lower-case every other "
        "letter; non-letters stay as they are.",
        "def kth_upper(s):\n    out = []\n    n = 0\n    for ch in s:\n        if ch.isalpha():\n            n += 1\n"
        "            out.append(ch.upper() if n % $k == 0 else ch.lower())\n        else:\n            out.append(ch)\n"
        "    return ''.join(out)\n",
        ({"k": 2}, {"k": 3}, {"k": 4}, {"k": 5}),
        lambda r, p: [_word(r, string.ascii_letters + " -1", 0, 25)],
        lambda p: [[""], ["---"], ["ABCDEFGHIJ"], ["a b c d e f"]]),
    # --- parsing ---------------------------------------------------------------------------------
    Template(
        "parsing", "kv_sum", "sum_matching", "def sum_matching(s: str) -> int",
        "s holds key=value pairs separated by '$sep' (keys are lowercase words, values are integers, possibly "
        "negative; s may be empty). Return the sum of the values whose key starts with '$prefix'.",
        "def sum_matching(s):\n    total = 0\n    for part in s.split('$sep'):\n        if not part:\n"
        "            continue\n        key, value = part.split('=')\n        if key.startswith('$prefix'):\n"
        "            total += int(value)\n    return total\n",
        ({"sep": ";", "prefix": "a"}, {"sep": ",", "prefix": "b"}, {"sep": "&", "prefix": "ab"},
         {"sep": "|", "prefix": "c"}),
        lambda r, p: [p["sep"].join(f"{_word(r, 'abc', 1, 3)}={r.randint(-50, 50)}" for _ in range(r.randint(0, 7)))],
        lambda p: [[""], [f"{p['prefix']}=5"], [f"x=1{p['sep']}{p['prefix']}x=-7{p['sep']}{p['prefix']}=0"]]),
    Template(
        "parsing", "duration", "duration", "def duration(text: str) -> int",
        "text is a duration written as numbers with unit letters, like '1h30m' or '2d5s' (units d = day, h = hour, "
        "m = minute, s = second; each unit at most once, in any order; text may be empty). Return the total number "
        "of $unit, rounded down.",
        "def duration(text):\n    sizes = {'d': 86400, 'h': 3600, 'm': 60, 's': 1}\n    total = 0\n    num = ''\n"
        "    for ch in text:\n        if ch.isdigit():\n            num += ch\n        else:\n"
        "            total += int(num) * sizes[ch]\n            num = ''\n    return total // $div\n",
        ({"unit": "seconds", "div": 1}, {"unit": "minutes", "div": 60}, {"unit": "hours", "div": 3600},
         {"unit": "days", "div": 86400}),
        lambda r, p: ["".join(f"{r.randint(0, 99)}{u}" for u in r.sample("dhms", r.randint(0, 4)))],
        lambda p: [[""], ["0s"], ["59s"], ["1d"], ["23h59m59s"]]),
    Template(
        "parsing", "arithmetic", "evaluate", "def evaluate(expr: str) -> int",
        "expr is an arithmetic expression over non-negative integers using only the operators $ops, $spacing, with "
        "no parentheses. Evaluate it with the usual precedence ($prec) and return the integer result.",
        "def evaluate(expr):\n    tokens = []\n    num = ''\n    for ch in expr.replace(' ', ''):\n"
        "        if ch.isdigit():\n            num += ch\n        else:\n            tokens.append(int(num))\n"
        "            tokens.append(ch)\n            num = ''\n    tokens.append(int(num))\n    terms = [tokens[0]]\n"
        "    signs = []\n    for op, value in zip(tokens[1::2], tokens[2::2]):\n        if op == '*':\n"
        "            terms[-1] *= value\n        else:\n            signs.append(op)\n            terms.append(value)\n"
        "    total = terms[0]\n    for op, value in zip(signs, terms[1:]):\n"
        "        total = total + value if op == '+' else total - value\n    return total\n",
        ({"ops": "+ and -", "spacing": "written without spaces", "prec": "left to right", "opset": "+-", "sp": ""},
         {"ops": "+ and -", "spacing": "with single spaces around operators", "prec": "left to right", "opset": "+-",
          "sp": " "},
         {"ops": "+, - and *", "spacing": "written without spaces", "prec": "* before + and -", "opset": "+-*", "sp": ""},
         {"ops": "+, - and *", "spacing": "with single spaces around operators", "prec": "* before + and -",
          "opset": "+-*", "sp": " "}),
        lambda r, p: [str(r.randint(0, 20)) + "".join(f"{p['sp']}{r.choice(p['opset'])}{p['sp']}{r.randint(0, 20)}"
                                                      for _ in range(r.randint(0, 6)))],
        lambda p: [["0"], ["7"], [f"1{p['sp']}-{p['sp']}2{p['sp']}-{p['sp']}3"]]),
    # --- arrays ----------------------------------------------------------------------------------
    Template(
        "arrays", "window_sum", "best_window", "def best_window(nums: list[int]) -> int | None",
        "Return the largest sum of $k consecutive elements of nums, or None when nums has fewer than $k elements.",
        "def best_window(nums):\n    if len(nums) < $k:\n        return None\n"
        "    return max(sum(nums[i:i + $k]) for i in range(len(nums) - $k + 1))\n",
        ({"k": 2}, {"k": 3}, {"k": 4}, {"k": 5}),
        lambda r, p: [_ints(r, 0, 12, -20, 20)],
        lambda p: [[[]], [[5] * p["k"]], [[-1] * (p["k"] + 2)], [[1] * (p["k"] - 1)]]),
    Template(
        "arrays", "pair_count", "count_pairs", "def count_pairs(nums: list[int]) -> int",
        "Count the index pairs i < j with nums[i] + nums[j] == $t.",
        "def count_pairs(nums):\n    seen = {}\n    count = 0\n    for x in nums:\n"
        "        count += seen.get($t - x, 0)\n        seen[x] = seen.get(x, 0) + 1\n    return count\n",
        ({"t": 0}, {"t": 7}, {"t": 10}, {"t": -4}),
        lambda r, p: [_ints(r, 0, 15, -10, 15)],
        lambda p: [[[]], [[p["t"]]], [[p["t"] // 2] * 5 if p["t"] % 2 == 0 else [0, p["t"]] * 3]]),
    Template(
        "arrays", "longest_run", "longest_run", "def longest_run(nums: list[int]) -> int",
        "Return the length of the longest contiguous stretch of nums in which each element is $rel the one before "
        "it (a single element counts as a stretch of length 1; an empty list gives 0).",
        "def longest_run(nums):\n    best = cur = 0\n    for i, x in enumerate(nums):\n"
        "        cur = cur + 1 if i > 0 and x $op nums[i - 1] else 1\n        best = max(best, cur)\n    return best\n",
        ({"rel": "strictly greater than", "op": ">"}, {"rel": "greater than or equal to", "op": ">="},
         {"rel": "strictly less than", "op": "<"}, {"rel": "equal to", "op": "=="}),
        lambda r, p: [_ints(r, 0, 14, 0, 6)],
        lambda p: [[[]], [[3]], [[1, 2, 3, 4, 5]], [[5, 5, 5]], [[5, 4, 3, 2]]]),
    # --- intervals -------------------------------------------------------------------------------
    Template(
        "intervals", "merge_groups", "count_groups", "def count_groups(intervals: list[list[int]]) -> int",
        "Each interval is [start, end] with start <= end. Two intervals belong to the same group when they overlap "
        "or the gap between them is at most $g (groups chain transitively). Return the number of groups.",
        "def count_groups(intervals):\n    groups = 0\n    reach = None\n    for a, b in sorted(intervals):\n"
        "        if reach is None or a - reach > $g:\n            groups += 1\n            reach = b\n"
        "        else:\n            reach = max(reach, b)\n    return groups\n",
        ({"g": 0}, {"g": 1}, {"g": 2}, {"g": 5}),
        lambda r, p: [_intervals(r)],
        lambda p: [[[]], [[[0, 0]]], [[[0, 2], [2 + p["g"], 9]]], [[[0, 2], [3 + p["g"], 9]]]]),
    Template(
        "intervals", "coverage_k", "covered_by_k", "def covered_by_k(intervals: list[list[int]]) -> int",
        "Each interval [start, end) covers the integer points start, start+1, ..., end-1. Return how many integer "
        "points are covered by at least $k of the intervals.",
        "def covered_by_k(intervals):\n    events = {}\n    for a, b in intervals:\n"
        "        events[a] = events.get(a, 0) + 1\n        events[b] = events.get(b, 0) - 1\n"
        "    total = depth = 0\n    prev = None\n    for x in sorted(events):\n"
        "        if prev is not None and depth >= $k:\n            total += x - prev\n        depth += events[x]\n"
        "        prev = x\n    return total\n",
        ({"k": 1}, {"k": 2}, {"k": 3}, {"k": 4}),
        lambda r, p: [_intervals(r, 10, 20)],
        lambda p: [[[]], [[[3, 3]]], [[[0, 5]] * p["k"]], [[[0, 5]] * (p["k"] - 1) if p["k"] > 1 else [[1, 2]]]]),
    Template(
        "intervals", "free_slots", "free_slots", "def free_slots(busy: list[list[int]]) -> list[list[int]]",
        "busy lists [start, end) meetings inside a day that runs from 0 to $end (they may overlap or be unsorted). "
        "Return the free [start, end) slots of the day that are at least $m long, in increasing order.",
        "def free_slots(busy):\n    slots = []\n    t = 0\n    for a, b in sorted(busy):\n"
        "        if a - t >= $m:\n            slots.append([t, a])\n        t = max(t, b)\n"
        "    if $end - t >= $m:\n        slots.append([t, $end])\n    return slots\n",
        ({"end": 24, "m": 1}, {"end": 40, "m": 3}, {"end": 60, "m": 5}, {"end": 30, "m": 2}),
        lambda r, p: [[[a, min(p["end"], a + r.randint(1, 6))] for a in
                       (r.randint(0, p["end"] - 1) for _ in range(r.randint(0, 6)))]],
        lambda p: [[[]], [[[0, p["end"]]]], [[[1, 2], [1, 3]]]]),
    # --- simulation ------------------------------------------------------------------------------
    Template(
        "simulation", "robot", "final_position", "def final_position(moves: str) -> list[int]",
        "A robot starts at [0, 0] on a $n by $n board whose edges wrap around (leaving one side re-enters on the "
        "opposite side). moves is a string over U, D, L, R (U adds 1 to y, R adds 1 to x); other characters are "
        "ignored. Return its final [x, y].",
        "def final_position(moves):\n    x = y = 0\n    step = {'U': (0, 1), 'D': (0, -1), 'L': (-1, 0), 'R': (1, 0)}\n"
        "    for ch in moves:\n        if ch in step:\n            dx, dy = step[ch]\n"
        "            x, y = (x + dx) % $n, (y + dy) % $n\n    return [x, y]\n",
        ({"n": 5}, {"n": 7}, {"n": 10}, {"n": 3}),
        lambda r, p: ["".join(r.choice("UDLRx") for _ in range(r.randint(0, 30)))],
        lambda p: [[""], ["L"], ["D"], ["R" * p["n"]]]),
    Template(
        "simulation", "bank", "final_balance", "def final_balance(ops: list[str]) -> int",
        "Simulate a bank account starting at balance 0. Each op is 'deposit N' or 'withdraw N'. A withdrawal larger "
        "than the balance is refused and instead charges a fee of $fee (the balance may then go negative). Return "
        "the final balance.",
        "def final_balance(ops):\n    balance = 0\n    for op in ops:\n        kind, amount = op.split()\n"
        "        amount = int(amount)\n        if kind == 'deposit':\n            balance += amount\n"
        "        elif amount <= balance:\n            balance -= amount\n        else:\n            balance -= $fee\n"
        "    return balance\n",
        ({"fee": 0}, {"fee": 1}, {"fee": 2}, {"fee": 5}),
        lambda r, p: [[f"{r.choice(['deposit', 'withdraw'])} {r.randint(0, 30)}" for _ in range(r.randint(0, 10))]],
        lambda p: [[[]], [["withdraw 1"]], [["deposit 5", "withdraw 5", "withdraw 0"]]]),
    Template(
        "simulation", "automaton", "evolve", "def evolve(cells: str) -> str",
        "cells is a row of '0'/'1' characters of an elementary cellular automaton using Wolfram rule $rule; cells "
        "beyond both ends are always 0. Apply the rule $steps times (each new cell depends on its left neighbour, "
        "itself and its right neighbour) and return the row, of the same length.",
        "def evolve(cells):\n    row = [int(c) for c in cells]\n    for _ in range($steps):\n"
        "        padded = [0] + row + [0]\n"
        "        row = [($rule >> (padded[i] * 4 + padded[i + 1] * 2 + padded[i + 2])) & 1 for i in range(len(row))]\n"
        "    return ''.join(map(str, row))\n",
        ({"rule": 30, "steps": 1}, {"rule": 90, "steps": 2}, {"rule": 110, "steps": 3}, {"rule": 184, "steps": 4}),
        lambda r, p: ["".join(r.choice("01") for _ in range(r.randint(1, 16)))],
        lambda p: [["0"], ["1"], ["0000000"], ["1111111"]]),
    # --- dynamic programming ---------------------------------------------------------------------
    Template(
        "dp", "coin_ways", "count_ways", "def count_ways(amount: int) -> int",
        "Return the number of ways to pay exactly amount using any number of coins of values $coins, where the order "
        "of coins does not matter (amount 0 has one way).",
        "def count_ways(amount):\n    ways = [1] + [0] * amount\n    for c in $coins:\n"
        "        for v in range(c, amount + 1):\n            ways[v] += ways[v - c]\n    return ways[amount]\n",
        ({"coins": [1, 2, 5]}, {"coins": [2, 3, 7]}, {"coins": [1, 5, 10, 25]}, {"coins": [3, 4]}),
        lambda r, p: [r.randint(0, 150)],
        lambda p: [[0], [1], [2], [300]], difficulty="medium"),
    Template(
        "dp", "jump_cost", "min_cost", "def min_cost(cost: list[int]) -> int",
        "You stand before index 0 of cost and must get past the last index. Each move jumps forward by 1 to $jump "
        "positions; landing on index i costs cost[i]; jumping past the end is free. Your first jump lands on "
        "any of the first $jump indices (or past the end). Return the minimum total cost.",
        "def min_cost(cost):\n    n = len(cost)\n    best = [0] * (n + $jump)\n    for i in range(n - 1, -1, -1):\n"
        "        best[i] = cost[i] + min(best[i + 1:i + 1 + $jump])\n    return min(best[0:$jump])\n",
        ({"jump": 2}, {"jump": 3}, {"jump": 4}, {"jump": 5}),
        lambda r, p: [_ints(r, 0, 12, 0, 20)],
        lambda p: [[[]], [[7]], [[5] * 10]], difficulty="medium"),
    Template(
        "dp", "edit_distance", "edit_cost", "def edit_cost(a: str, b: str) -> int",
        "Return the minimum cost to turn string a into string b when inserting a character costs $ins, deleting one "
        "costs $dele and replacing one with another costs $sub.",
        "def edit_cost(a, b):\n    prev = [j * $ins for j in range(len(b) + 1)]\n    for i in range(1, len(a) + 1):\n"
        "        cur = [i * $dele] + [0] * len(b)\n        for j in range(1, len(b) + 1):\n"
        "            same = prev[j - 1] if a[i - 1] == b[j - 1] else prev[j - 1] + $sub\n"
        "            cur[j] = min(same, prev[j] + $dele, cur[j - 1] + $ins)\n        prev = cur\n    return prev[-1]\n",
        ({"ins": 1, "dele": 1, "sub": 1}, {"ins": 1, "dele": 1, "sub": 2}, {"ins": 2, "dele": 3, "sub": 4},
         {"ins": 3, "dele": 1, "sub": 1}),
        lambda r, p: [_word(r, "abc", 0, 7), _word(r, "abc", 0, 7)],
        lambda p: [["", ""], ["", "abc"], ["abc", ""], ["abc", "abc"]], difficulty="medium"),
    # --- grids (OOD test) ------------------------------------------------------------------------
    Template(
        "grids", "islands", "count_islands", "def count_islands(grid: list[str]) -> int",
        "grid is a list of equal-length strings of '#' (land) and '.' (water). Land cells are connected through "
        "their $conn neighbours. Return the number of connected land regions with at least $m cells.",
        "def count_islands(grid):\n    seen = set()\n    count = 0\n    steps = $steps\n    for r0, row in enumerate(grid):\n"
        "        for c0, ch in enumerate(row):\n            if ch != '#' or (r0, c0) in seen:\n                continue\n"
        "            stack = [(r0, c0)]\n            seen.add((r0, c0))\n            size = 0\n            while stack:\n"
        "                r, c = stack.pop()\n                size += 1\n                for dr, dc in steps:\n"
        "                    q = (r + dr, c + dc)\n"
        "                    if 0 <= q[0] < len(grid) and 0 <= q[1] < len(grid[0]) and grid[q[0]][q[1]] == '#' "
        "and q not in seen:\n                        seen.add(q)\n                        stack.append(q)\n"
        "            if size >= $m:\n                count += 1\n    return count\n",
        ({"conn": "4 side", "m": 1, "steps": [(0, 1), (1, 0), (0, -1), (-1, 0)]},
         {"conn": "8 side-or-corner", "m": 1, "steps": [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]},
         {"conn": "4 side", "m": 2, "steps": [(0, 1), (1, 0), (0, -1), (-1, 0)]},
         {"conn": "8 side-or-corner", "m": 3, "steps": [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]}),
        lambda r, p: [_grid(r, 0.45)],
        lambda p: [[["."]], [["#"]], [["#.#", ".#.", "#.#"]], [["###", "###"]]], difficulty="medium"),
    Template(
        "grids", "shortest_path", "shortest_path", "def shortest_path(grid: list[str]) -> int",
        "grid is a list of equal-length strings of '.' (free) and '#' (wall). Moving $moves, return the fewest moves "
        "from the $start corner to the opposite corner, or -1 if it cannot be reached (also when either corner is a "
        "wall; a 1x1 free grid needs 0 moves).",
        "def shortest_path(grid):\n    from collections import deque\n    rows, cols = len(grid), len(grid[0])\n"
        "    start = (0, $c0 * (cols - 1))\n    goal = (rows - 1, (1 - $c0) * (cols - 1))\n"
        "    if grid[start[0]][start[1]] == '#' or grid[goal[0]][goal[1]] == '#':\n        return -1\n"
        "    dist = {start: 0}\n    queue = deque([start])\n    while queue:\n        r, c = queue.popleft()\n"
        "        if (r, c) == goal:\n            return dist[(r, c)]\n        for dr, dc in $steps:\n"
        "            q = (r + dr, c + dc)\n"
        "            if 0 <= q[0] < rows and 0 <= q[1] < cols and grid[q[0]][q[1]] == '.' and q not in dist:\n"
        "                dist[q] = dist[(r, c)] + 1\n                queue.append(q)\n    return -1\n",
        ({"moves": "up, down, left or right", "start": "top-left", "c0": 0,
          "steps": [(0, 1), (1, 0), (0, -1), (-1, 0)]},
         {"moves": "to any of the 8 neighbouring cells", "start": "top-left", "c0": 0,
          "steps": [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]},
         {"moves": "up, down, left or right", "start": "top-right", "c0": 1,
          "steps": [(0, 1), (1, 0), (0, -1), (-1, 0)]},
         {"moves": "to any of the 8 neighbouring cells", "start": "top-right", "c0": 1,
          "steps": [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b]}),
        lambda r, p: [_grid(r, 0.25)],
        lambda p: [[["."]], [["#"]], [[".#", "#."]], [["....", "###.", "....", ".###", "...."]]], difficulty="medium"),
    Template(
        "grids", "rotate", "turn", "def turn(matrix: list[list[int]]) -> list[list[int]]",
        "matrix is a rectangular list of rows (possibly with zero rows). Return it $what.",
        "def turn(matrix):\n    m = [list(row) for row in matrix]\n    for _ in range($times):\n"
        "        m = [list(row) for row in zip(*m[::-1])]\n    if $flip:\n        m = [list(row) for row in zip(*m)]\n"
        "    return m\n",
        ({"what": "rotated 90 degrees clockwise", "times": 1, "flip": False},
         {"what": "rotated 180 degrees", "times": 2, "flip": False},
         {"what": "rotated 90 degrees counter-clockwise", "times": 3, "flip": False},
         {"what": "transposed (rows become columns)", "times": 0, "flip": True}),
        lambda r, p: (lambda c: [[[r.randint(0, 9) for _ in range(c)] for _ in range(r.randint(1, 5))]])(
            r.randint(1, 5)),
        lambda p: [[[]], [[[1]]], [[[1, 2, 3]]], [[[1], [2], [3]]]]),
    # --- formatting (OOD test) -------------------------------------------------------------------
    Template(
        "formatting", "thousands", "format_number", "def format_number(x: float) -> str",
        "Format x with exactly $d digits after the decimal point (rounded as Python's format() does) and the integer "
        "digits grouped in threes with '$sep' as the group separator$point.",
        "def format_number(x):\n    text = format(x, ',.$d' + 'f')\n"
        "    return text.replace(',', '\\0').replace('.', '$dec').replace('\\0', '$sep')\n",
        ({"d": 2, "sep": ",", "dec": ".", "point": ""}, {"d": 0, "sep": " ", "dec": ".", "point": ""},
         {"d": 2, "sep": ".", "dec": ",", "point": " and ',' as the decimal point"},
         {"d": 3, "sep": "_", "dec": ".", "point": ""}),
        lambda r, p: [round(r.uniform(-2e7, 2e7), 6)],
        lambda p: [[0.0], [999.0], [1000.0], [-1234567.891]]),
    Template(
        "formatting", "weekday", "weekday_after", "def weekday_after(date: str) -> str",
        "date is a calendar date 'YYYY-MM-DD' (Gregorian). Return the English weekday name ($style) of the day "
        "$n days after it.",
        "def weekday_after(date):\n    import datetime\n"
        "    day = datetime.date.fromisoformat(date) + datetime.timedelta(days=$n)\n"
        "    name = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][day.weekday()]\n"
        "    return name[:$cut]\n",
        ({"n": 0, "style": "full, like 'Monday'", "cut": 9}, {"n": 1, "style": "first three letters, like 'Mon'", "cut": 3},
         {"n": 100, "style": "full, like 'Monday'", "cut": 9}, {"n": 365, "style": "first three letters, like 'Mon'",
                                                                 "cut": 3}),
        lambda r, p: [_date(r)],
        lambda p: [["2000-02-28"], ["1900-02-28"], ["2024-12-31"]]),
    Template(
        "formatting", "roman", "roman", "def roman(n: int) -> str",
        "Write the integer n (1 <= n <= 3999) as a Roman numeral in $case letters, $rule.",
        "def roman(n):\n    table = $table\n    out = ''\n    for value, sym in table:\n"
        "        while n >= value:\n            out += sym\n            n -= value\n    return out.$case()\n",
        ({"case": "upper", "rule": "using subtractive pairs (IV, IX, XL, XC, CD, CM)",
          "table": [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]},
         {"case": "lower", "rule": "using subtractive pairs (iv, ix, xl, xc, cd, cm)",
          "table": [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                    (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]},
         {"case": "upper", "rule": "additively only (4 is IIII, 9 is VIIII, 40 is XXXX, 900 is DCCCC)",
          "table": [(1000, "M"), (500, "D"), (100, "C"), (50, "L"), (10, "X"), (5, "V"), (1, "I")]},
         {"case": "lower", "rule": "additively only (4 is iiii, 9 is viiii, 40 is xxxx, 900 is dcccc)",
          "table": [(1000, "M"), (500, "D"), (100, "C"), (50, "L"), (10, "X"), (5, "V"), (1, "I")]}),
        lambda r, p: [r.randint(1, 3999)],
        lambda p: [[1], [4], [9], [3999], [1994]]),
    # --- stdin/stdout statistics ---------------------------------------------------------------------
    Template(
        "stdio", "stats", "solve", "",
        "Standard input holds an integer n on the first line and then n numbers separated by spaces on the second "
        "line (n >= 1). Print $what, one per line, each with 4 digits after the decimal point.",
        "def solve(data):\n    parts = data.split()\n    n = int(parts[0])\n    xs = sorted(float(v) for v in parts[1:n + 1])\n"
        "    mean = sum(xs) / n\n    mid = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2\n"
        "    std = (sum((x - mean) ** 2 for x in xs) / n) ** 0.5\n"
        "    values = {'mean': mean, 'median': mid, 'std': std, 'range': xs[-1] - xs[0]}\n"
        "    return ''.join('%.4f\\n' % values[k] for k in $keys)\n",
        ({"what": "the mean and the median", "keys": ["mean", "median"]},
         {"what": "the population standard deviation", "keys": ["std"]},
         {"what": "the median, then the range (largest minus smallest)", "keys": ["median", "range"]},
         {"what": "the mean, the population standard deviation and the range (largest minus smallest)",
          "keys": ["mean", "std", "range"]}),
        lambda r, p: (lambda xs: f"{len(xs)}\n{' '.join(str(x) for x in xs)}\n")(
            [round(r.uniform(-100, 100), 2) for _ in range(r.randint(1, 12))]),
        lambda p: ["1\n5\n", "2\n1 2\n", "3\n-1 -1 -1\n"], mode="stdio", float_tol=1e-3),
    Template(
        "stdio", "word_freq", "solve", "",
        "Standard input is English-like text. Split it into words (maximal runs of ASCII letters, compared "
        "case-insensitively). Print the $k most frequent words as lines 'word count' (lowercase), most frequent "
        "first, ties broken alphabetically; print fewer lines if there are fewer distinct words.",
        "def solve(data):\n    import re\n    counts = {}\n    for w in re.findall('[A-Za-z]+', data):\n"
        "        w = w.lower()\n        counts[w] = counts.get(w, 0) + 1\n"
        "    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:$k]\n"
        "    return ''.join('%s %d\\n' % kv for kv in ranked)\n",
        ({"k": 1}, {"k": 3}, {"k": 5}, {"k": 10}),
        lambda r, p: " ".join(r.choice(["the", "The", "cat", "dog", "a", "tree", "Dog", "sun", "red"]) +
                              r.choice(["", "", ",", ".", "!"]) for _ in range(r.randint(0, 25))) + "\n",
        lambda p: ["", "...\n", "Zebra apple zebra APPLE b\n"], mode="stdio"),
    Template(
        "stdio", "table_sums", "solve", "",
        "Standard input starts with a line 'r c' (r rows, c columns, both >= 1), followed by r lines of c integers. "
        "Print $what.",
        "def solve(data):\n    nums = [int(v) for v in data.split()]\n    r, c = nums[0], nums[1]\n"
        "    rows = [nums[2 + i * c: 2 + (i + 1) * c] for i in range(r)]\n$body",
        ({"what": "the sum of each row, one per line", "body": "    return ''.join('%d\\n' % sum(row) for row in rows)\n"},
         {"what": "the sum of each column, separated by single spaces, on one line",
          "body": "    return ' '.join(str(sum(col)) for col in zip(*rows)) + '\\n'\n"},
         {"what": "the largest row sum and then the largest column sum, on two lines",
          "body": "    return '%d\\n%d\\n' % (max(map(sum, rows)), max(map(sum, zip(*rows))))\n"},
         {"what": "the sum of all entries",
          "body": "    return '%d\\n' % sum(map(sum, rows))\n"}),
        lambda r, p: (lambda n, m: f"{n} {m}\n" + "".join(" ".join(str(r.randint(-9, 9)) for _ in range(m)) + "\n"
                                                        for _ in range(n)))(r.randint(1, 5), r.randint(1, 5)),
        lambda p: ["1 1\n0\n", "1 3\n1 2 3\n", "3 1\n-1\n-2\n-3\n"], mode="stdio"),
    # --- geometry (OOD dev) --------------------------------------------------------------------
    Template(
        "geometry", "polygon", "polygon_measure", "def polygon_measure(points: list[list[float]]) -> float",
        "points are the vertices [x, y] of a simple polygon in order (at least 3). Return its $what.",
        "def polygon_measure(points):\n    n = len(points)\n    area = perim = 0.0\n    for i in range(n):\n"
        "        (x1, y1), (x2, y2) = points[i], points[(i + 1) % n]\n        area += x1 * y2 - x2 * y1\n"
        "        perim += ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5\n    return $expr\n",
        ({"what": "area", "expr": "abs(area) / 2"}, {"what": "perimeter", "expr": "perim"},
         {"what": "area divided by its perimeter", "expr": "abs(area) / 2 / perim"},
         {"what": "signed area (positive when the vertices run counter-clockwise)", "expr": "area / 2"}),
        lambda r, p: [[[round(5 * __import__('math').cos(t) * s, 3), round(5 * __import__('math').sin(t) * s, 3)]
                       for t, s in sorted((r.uniform(0, 6.28), r.uniform(0.5, 1.5)) for _ in range(r.randint(3, 7)))]],
        lambda p: [[[[0, 0], [1, 0], [0, 1]]], [[[0, 0], [0, 2], [2, 2], [2, 0]]]], float_tol=1e-6),
    Template(
        "geometry", "closest_pair", "closest", "def closest(points: list[list[float]]) -> float",
        "points holds at least two points [x, y]. Return the smallest $metric distance between two of them.",
        "def closest(points):\n    best = None\n    for i in range(len(points)):\n        for j in range(i + 1, len(points)):\n"
        "            dx = abs(points[i][0] - points[j][0])\n            dy = abs(points[i][1] - points[j][1])\n"
        "            d = $expr\n            best = d if best is None or d < best else best\n    return best\n",
        ({"metric": "Euclidean", "expr": "(dx * dx + dy * dy) ** 0.5"}, {"metric": "Manhattan (|dx| + |dy|)",
                                                                         "expr": "dx + dy"},
         {"metric": "Chebyshev (max(|dx|, |dy|))", "expr": "max(dx, dy)"},
         {"metric": "squared Euclidean", "expr": "dx * dx + dy * dy"}),
        lambda r, p: [_points(r)],
        lambda p: [[[[0, 0], [0, 0]]], [[[0, 0], [3, 4]]], [[[1, 1], [-1, -1], [5, 5]]]], float_tol=1e-6),
    Template(
        "geometry", "in_circle", "count_inside", "def count_inside(points: list[list[float]]) -> int",
        "Count the points [x, y] whose distance from ($cx, $cy) is at most $rad.",
        "def count_inside(points):\n    return sum(1 for x, y in points if (x - $cx) ** 2 + (y - $cy) ** 2 <= $rad ** 2)\n",
        ({"cx": 0, "cy": 0, "rad": 5}, {"cx": 1, "cy": -2, "rad": 3}, {"cx": -3, "cy": 3, "rad": 6},
         {"cx": 2, "cy": 2, "rad": 1.5}),
        lambda r, p: [_points(r, 0, 12)],
        lambda p: [[[]], [[[p["cx"], p["cy"]]]], [[[p["cx"] + p["rad"], p["cy"]]]]]),
)

FAMILY_NAMES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in TEMPLATES))


def reference_source(template: Template, params: Mapping[str, Any]) -> str:
    """The reference solution as the agent would submit it (stdio programs read stdin and print)."""
    source = template.render(template.source, params)
    return source + STDIO_MAIN if template.mode == "stdio" else source


def reference_function(template: Template, params: Mapping[str, Any]) -> Callable[..., Any]:
    """The reference solution loaded on the host (our own code), used to compute expected outputs."""
    namespace: dict[str, Any] = {}
    exec(compile(template.render(template.source, params), f"<reference {template.name}>", "exec"), namespace)
    return namespace[template.entry]
