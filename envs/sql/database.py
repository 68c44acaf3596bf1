"""Seeded, byte-deterministic SQLite instances of each schema family, built on first use into a cache directory.

Every instance of a family has the same schema and different contents (the test-suite idea: a query is correct
only if it matches gold on all instances). Values come from ``random.Random`` seeded with SHA-256 of stable
strings, so a build depends on (generator version, family, instance) only, never on ``hash()`` or the clock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import random
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .schemas import FAMILIES, Column, SchemaFamily, Table, ddl

__all__ = [
    "GENERATOR_VERSION",
    "INSTANCES_PER_FAMILY",
    "build_database",
    "database_path",
    "ensure_databases",
    "stable_seed",
]

INSTANCES_PER_FAMILY = 3
# Bump whenever generated contents change (schemas, word lists, distributions): cached files are then rebuilt.
GENERATOR_VERSION = 1
_STAMP_NAME = ".generator_stamp"


def stable_seed(*parts: object) -> int:
    """A 64-bit seed from the SHA-256 of the parts' text (stable across processes and machines)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


# ---------------------------------------------------------------------------------------------------------------
# Word lists for names (no apostrophes: values are quoted in single quotes inside questions).

_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
    "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa",
    "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily", "Paul", "Donna", "Andrew",
    "Michelle", "Joshua", "Carol", "Kevin", "Amanda", "Brian", "Melissa", "Priya", "Wei", "Fatima", "Yuki", "Omar",
    "Sofia", "Luca", "Aisha", "Mateo", "Elena", "Hiro", "Nadia", "Ivan", "Chloe", "Diego", "Grace", "Noah", "Zoe",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Patel", "Kim", "Chen", "Singh", "Okafor", "Rossi", "Novak", "Silva", "Tanaka", "Ivanova", "Dubois", "Larsen",
)
_ADJ = (
    "Classic", "Deluxe", "Compact", "Smart", "Ultra", "Eco", "Vintage", "Modern", "Portable", "Premium", "Silent",
    "Rapid", "Golden", "Urban", "Rustic", "Bright", "Solid", "Swift", "Grand", "Little",
)
_PRODUCT_NOUN = (
    "Lamp", "Kettle", "Backpack", "Speaker", "Blender", "Jacket", "Sneakers", "Puzzle", "Drone", "Mug", "Chair",
    "Blanket", "Headphones", "Watch", "Notebook", "Tent", "Bicycle", "Camera", "Toaster", "Scarf", "Mixer", "Rug",
)
_TITLE_ADJ = (
    "Silent", "Hidden", "Broken", "Golden", "Last", "Forgotten", "Distant", "Burning", "Quiet", "Wild", "Secret",
    "Endless", "Crimson", "Lost", "Bright", "Hollow", "Falling", "Midnight",
)
_TITLE_NOUN = (
    "River", "Garden", "Empire", "Shadow", "Voyage", "Kingdom", "Mirror", "Harbor", "Storm", "Letter", "Orchard",
    "Compass", "Winter", "Island", "Lantern", "Promise", "Forest", "Signal", "Horizon", "Echo",
)
_PLACE_WORD = (
    "Maple", "Cedar", "Willow", "Pine", "Oak", "Birch", "Aspen", "Harbor", "Summit", "Meadow", "Brook", "Ridge",
    "Lake", "Stone", "River", "Hill", "Sunset", "Highland", "Bayview", "Elm", "Granite", "Clover",
)
_STREET_SUFFIX = ("Street", "Avenue", "Road", "Lane", "Drive", "Court")
_COURSE_ADJ = (
    "Applied", "Modern", "Introductory", "Advanced", "Creative", "Classical", "Global", "Practical", "Honors",
    "Foundations of", "Topics in", "Seminar in",
)
_COURSE_TOPIC = (
    "Statistics", "Poetry", "Chemistry", "Geometry", "Drawing", "Economics", "Genetics", "Calculus", "Ecology",
    "Grammar", "Philosophy", "Robotics", "Music Theory", "Civics", "Astronomy", "Film Studies",
)
_DEPARTMENTS = (
    "Sales", "Marketing", "Engineering", "Finance", "Human Resources", "Legal", "Operations", "Support",
    "Research", "Procurement", "Logistics", "Quality Assurance", "Design", "Security", "Facilities", "Training",
    "Data Science", "Public Relations", "Compliance", "Customer Success", "Product", "IT Services",
)
_PROJECT_WORD = (
    "Apollo", "Atlas", "Nimbus", "Phoenix", "Orion", "Zephyr", "Falcon", "Mercury", "Titan", "Aurora", "Vega",
    "Comet", "Helix", "Nova", "Polaris", "Quartz", "Summit", "Tundra", "Vertex", "Kestrel",
)
_PROJECT_NOUN = ("Migration", "Redesign", "Rollout", "Audit", "Upgrade", "Launch", "Pilot", "Integration")
_AIRLINE_SUFFIX = ("Air", "Airways", "Airlines", "Aviation")
_BAND_NOUN = (
    "Wolves", "Strangers", "Pilots", "Echoes", "Rivers", "Machines", "Ghosts", "Lions", "Dreamers", "Ravens",
    "Satellites", "Monarchs", "Drifters", "Tigers",
)
_PLACE_SUFFIX = ("Heights", "Park", "Village", "Gardens", "Commons", "Square", "Hills", "Point")
_VENUE_SUFFIX = ("Stadium", "Arena", "Field", "Park", "Grounds")
_MASCOTS = (
    "Tigers", "Eagles", "Rovers", "United", "Falcons", "Wanderers", "Rangers", "Hawks", "Athletic", "Comets",
    "Bears", "Sharks",
)
_STORE_SUFFIX = ("Market", "Outlet", "Emporium", "Depot", "Corner", "Store")
_CITY_WORDS = (
    "Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Madison", "Georgetown", "Franklin",
    "Clinton", "Salem", "Ashland", "Milton",
)
_NOTES = (
    "Requested gift wrap", "Call before delivery", "Fragile items", "Leave at front desk", "Repeat customer",
    "Prefers email contact", "Weekend only", "Follow up next month", "Paid in installments", "Priority handling",
)


def _name_value(style: str, rng: random.Random) -> str:
    """One generated name/code of a style (duplicates possible unless the column is unique)."""
    c = rng.choice
    if style == "product":
        return f"{c(_ADJ)} {c(_PRODUCT_NOUN)}"
    if style in ("book", "album"):
        form = rng.randrange(3)
        if form == 0:
            return f"The {c(_TITLE_ADJ)} {c(_TITLE_NOUN)}"
        if form == 1:
            return f"{c(_TITLE_NOUN)} of the {c(_TITLE_NOUN)}"
        return f"{c(_TITLE_ADJ)} {c(_TITLE_NOUN)}"
    if style == "track":
        return f"{c(_TITLE_ADJ)} {c(_TITLE_NOUN)}" if rng.random() < 0.7 else c(_TITLE_NOUN)
    if style == "band":
        return f"The {c(_TITLE_ADJ)} {c(_BAND_NOUN)}" if rng.random() < 0.6 else f"{c(_PLACE_WORD)} {c(_BAND_NOUN)}"
    if style == "store":
        return f"{c(_PLACE_WORD)} {c(_STORE_SUFFIX)}"
    if style == "course":
        return f"{c(_COURSE_ADJ)} {c(_COURSE_TOPIC)}"
    if style == "ward":
        return f"Ward {c('ABCDEFGH')}{rng.randint(1, 9)}"
    if style == "airline":
        return f"{c(_PLACE_WORD)} {c(_AIRLINE_SUFFIX)}"
    if style == "department":
        return c(_DEPARTMENTS)
    if style == "project":
        return f"{c(_PROJECT_WORD)} {c(_PROJECT_NOUN)}"
    if style == "address":
        return f"{rng.randint(1, 999)} {c(_PLACE_WORD)} {c(_STREET_SUFFIX)}"
    if style == "neighborhood":
        return f"{c(_PLACE_WORD)} {c(_PLACE_SUFFIX)}"
    if style == "venue":
        return f"{c(_PLACE_WORD)} {c(_VENUE_SUFFIX)}"
    if style == "team":
        return f"{c(_CITY_WORDS)} {c(_MASCOTS)}"
    if style == "airport":
        return "".join(c("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
    if style == "flight":
        return f"{c('ABCDEFGHJKLMNPRSTUVWXYZ')}{c('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(100, 9999)}"
    if style == "room":
        return f"{c('ABCDE')}-{rng.randint(100, 399)}"
    raise ValueError(f"unknown name style {style!r}")


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank + 1) ** s for rank in range(n)]


def _iso(day: _dt.date) -> str:
    return day.isoformat()


def _quantize(x: float, col: Column) -> float | int:
    step = col.step or 1.0
    q = round(x / step) * step
    q = min(max(q, col.low), col.high)
    if col.type == "INTEGER":
        return int(round(q))
    return round(q, 2)


def _numeric(col: Column, rng: random.Random) -> float | int:
    lo, hi = col.low, col.high
    if col.dist == "normal":
        x = rng.gauss((lo + hi) / 2.0, (hi - lo) / 6.0)
    elif col.dist == "skew":
        x = lo + (hi - lo) * rng.betavariate(1.2, 4.0)
    else:
        x = rng.uniform(lo, hi)
    return _quantize(x, col)


def _generate_column(
    family: SchemaFamily,
    table: Table,
    col: Column,
    n: int,
    instance: int,
    done: dict[str, dict[str, list]],
    current: dict[str, list],
) -> list:
    """Values of one column for n rows; its own RNG keeps other columns stable when one changes."""
    rng = random.Random(stable_seed("agentgym-sql", GENERATOR_VERSION, family.name, instance, table.name, col.name))
    kind = col.kind
    if kind == "id":
        return list(range(1, n + 1))
    if kind == "fk":
        if col.references == table.name:  # self reference: point at one of the first rows ("managers")
            pool = max(3, n // 10)
            values: list = []
            for row_id in range(1, n + 1):
                if row_id <= 2:
                    values.append(None)
                else:
                    values.append(rng.randint(1, min(pool, row_id - 1)))
            return values
        parent_ids = list(done[col.references or ""][family.table(col.references or "").pk.name])
        rng.shuffle(parent_ids)
        values = rng.choices(parent_ids, weights=_zipf_weights(len(parent_ids), col.zipf), k=n)
    elif kind == "person_name":
        values = [f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" for _ in range(n)]
    elif kind in ("name", "code"):
        if col.unique:
            seen: set[str] = set()
            values = []
            for _ in range(n):
                v = _name_value(col.style, rng)
                tries = 0
                while v in seen:
                    v = _name_value(col.style, rng)
                    tries += 1
                    if tries > 1000:
                        raise RuntimeError(f"name style {col.style!r} cannot yield {n} unique values")
                seen.add(v)
                values.append(v)
        else:
            values = [_name_value(col.style, rng) for _ in range(n)]
    elif kind == "categorical":
        vocab = list(col.vocab)
        rng.shuffle(vocab)  # which value is common differs per instance; the vocabulary itself is shared
        values = rng.choices(vocab, weights=_zipf_weights(len(vocab), col.zipf), k=n)
    elif kind in ("numeric", "money"):
        values = [_numeric(col, rng) for _ in range(n)]
    elif kind == "date":
        if col.after:
            base = current[col.after]
            lo, hi = col.after_days
            values = [
                None if b is None else _iso(_dt.date.fromisoformat(b) + _dt.timedelta(days=rng.randint(lo, hi)))
                for b in base
            ]
        else:
            start, end = _dt.date.fromisoformat(col.start), _dt.date.fromisoformat(col.end)
            span = (end - start).days
            values = [_iso(start + _dt.timedelta(days=rng.randint(0, span))) for _ in range(n)]
    elif kind == "bool":
        values = [1 if rng.random() < col.p_true else 0 for _ in range(n)]
    elif kind == "free_text":
        values = [rng.choice(_NOTES) for _ in range(n)]
    else:
        raise ValueError(f"unknown column kind {kind!r}")
    if col.null_rate > 0:
        values = [None if rng.random() < col.null_rate else v for v in values]
    return values


def _generate(family: SchemaFamily, instance: int) -> dict[str, dict[str, list]]:
    """All column values of one instance: {table: {column: values}}."""
    done: dict[str, dict[str, list]] = {}
    for table in family.tables:
        rng = random.Random(stable_seed("agentgym-sql", GENERATOR_VERSION, family.name, instance, table.name, "rows"))
        n = rng.randint(*table.rows)
        current: dict[str, list] = {}
        for col in table.columns:
            current[col.name] = _generate_column(family, table, col, n, instance, done, current)
        done[table.name] = current
    return done


def build_database(family: SchemaFamily, instance: int, path: Path) -> None:
    """Write instance ``instance`` of ``family`` to ``path`` (replaced if present); deterministic from (family, instance)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    data = _generate(family, instance)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("BEGIN")
        for stmt in ddl(family).split(";"):
            if stmt.strip():
                conn.execute(stmt)
        for table in family.tables:
            cols = [c.name for c in table.columns]
            rows = list(zip(*(data[table.name][c] for c in cols)))
            placeholders = ", ".join("?" for _ in cols)
            conn.executemany(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({placeholders})", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def database_path(root: Path, family: str, instance: int) -> Path:
    """Cache layout: root/<family>/<family>_<k>.sqlite."""
    return Path(root) / family / f"{family}_{instance}.sqlite"


def _stamp_text(family: SchemaFamily) -> str:
    digest = hashlib.sha256(ddl(family).encode("utf-8")).hexdigest()[:16]
    return f"generator={GENERATOR_VERSION} ddl={digest}\n"


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".stamp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_build(family: SchemaFamily, instance: int, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".sqlite")
    os.close(fd)
    try:
        build_database(family, instance, Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        for leftover in (tmp, tmp + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        raise


def ensure_databases(
    root: Path, families: Iterable[str] | None = None, instances: int = INSTANCES_PER_FAMILY
) -> dict[str, list[Path]]:
    """Build missing or stale instance files (atomically) and return {family: [path_0, ..., path_{k-1}]}.

    Idempotent: files whose family stamp matches the current generator are left untouched.
    """
    root = Path(root)
    names = list(FAMILIES) if families is None else list(families)
    out: dict[str, list[Path]] = {}
    for name in names:
        family = FAMILIES[name]
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        stamp_path = folder / _STAMP_NAME
        want = _stamp_text(family)
        try:
            fresh = stamp_path.read_text(encoding="utf-8") == want
        except OSError:
            fresh = False
        paths = [database_path(root, name, k) for k in range(instances)]
        for k, path in enumerate(paths):
            if not fresh or not path.exists():
                _atomic_build(family, k, path)
        if not fresh:
            _atomic_write_text(stamp_path, want)
        out[name] = paths
    return out
