"""Schema families of the SQL environment: typed tables, columns and natural-language names, as pure data.

Each column carries a semantic ``kind`` that drives both value generation (``database.py``) and which question
templates may use it (the ``questions`` package). Categorical vocabularies live here so every instance of a family shares
them (a literal such as department 'Sales' exists in every instance); row-level draws differ per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COLUMN_KINDS",
    "Column",
    "FAMILIES",
    "ForeignKey",
    "SchemaFamily",
    "Table",
    "ddl",
    "foreign_keys",
    "plural",
]

# id: integer primary key; fk: foreign key; person_name: "First Last"; name: entity name/title (styled);
# code: short identifier text; categorical: fixed vocabulary, Zipf-skewed; numeric: int/real measure;
# money: REAL amount; date: ISO 'YYYY-MM-DD' text; bool: 0/1 flag; free_text: short notes, mostly NULL.
COLUMN_KINDS = (
    "id",
    "fk",
    "person_name",
    "name",
    "code",
    "categorical",
    "numeric",
    "money",
    "date",
    "bool",
    "free_text",
)


def plural(word: str) -> str:
    """English plural of the last word of a noun phrase ("blood type" -> "blood types", "city" -> "cities")."""
    head, _, last = word.rpartition(" ")
    irregular = {"person": "people", "child": "children", "address": "addresses", "status": "statuses"}
    if last in irregular:
        out = irregular[last]
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        out = last[:-1] + "ies"
    elif last.endswith(("s", "sh", "ch", "x", "z")):
        out = last + "es"
    else:
        out = last + "s"
    return f"{head} {out}" if head else out


@dataclass(frozen=True)
class Column:
    """One typed column: SQL type, semantic kind, NL name and the parameters of its value distribution."""

    name: str
    type: str  # INTEGER | REAL | TEXT | DATE
    kind: str  # one of COLUMN_KINDS
    nl: str  # natural-language name, e.g. "hire date"
    null_rate: float = 0.0
    vocab: tuple[str, ...] = ()  # categorical values, shared by all instances
    zipf: float = 1.0  # skew of categorical / fk draws
    low: float = 0.0
    high: float = 0.0
    dist: str = "uniform"  # uniform | normal | skew
    step: float = 1.0  # quantization (creates duplicates); 0.01 for cents
    references: str | None = None  # parent table (fk kind); parent pk is implied
    style: str = ""  # name/code generator style
    unique: bool = False
    start: str = ""  # date range
    end: str = ""
    after: str = ""  # date column of the same row this one follows
    after_days: tuple[int, int] = (1, 30)
    p_true: float = 0.5  # bool
    true_phrase: str = ""  # bool: adjectival phrase, e.g. "in stock" ("products that are in stock")

    @property
    def nullable(self) -> bool:
        """Whether the generator may store NULL in this column."""
        return self.null_rate > 0.0

    @property
    def nl_plural(self) -> str:
        """Plural NL name ("categories")."""
        return plural(self.nl)


@dataclass(frozen=True)
class Table:
    """One table: columns (the first is the integer primary key), NL names, row-count range, label column."""

    name: str
    nl: str  # singular, e.g. "order item"
    columns: tuple[Column, ...]
    rows: tuple[int, int]
    label: str  # column that names a row in questions ("name", "title", or the id)

    @property
    def nl_plural(self) -> str:
        """Plural NL name of the table's entity."""
        return plural(self.nl)

    @property
    def pk(self) -> Column:
        """The integer primary key column."""
        return self.columns[0]

    def column(self, name: str) -> Column:
        """Column by name (KeyError when absent)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}.{name}")


@dataclass(frozen=True)
class ForeignKey:
    """child.column REFERENCES parent.parent_column."""

    child: str
    column: str
    parent: str
    parent_column: str


@dataclass(frozen=True)
class SchemaFamily:
    """A domain: 3-8 tables in dependency order (parents before children)."""

    name: str
    nl: str
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        """Table by name (KeyError when absent)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{self.name}.{name}")


def foreign_keys(family: SchemaFamily) -> list[ForeignKey]:
    """All foreign-key edges of a family, in table/column order."""
    out = []
    for t in family.tables:
        for c in t.columns:
            if c.kind == "fk":
                assert c.references is not None
                out.append(ForeignKey(t.name, c.name, c.references, family.table(c.references).pk.name))
    return out


def ddl(family: SchemaFamily) -> str:
    """CREATE TABLE statements (PRIMARY KEY, NOT NULL, REFERENCES) for a family, in dependency order."""
    stmts = []
    for t in family.tables:
        lines = []
        for c in t.columns:
            if c.kind == "id":
                lines.append(f"  {c.name} INTEGER PRIMARY KEY")
                continue
            spec = f"  {c.name} {c.type}"
            if not c.nullable:
                spec += " NOT NULL"
            if c.kind == "fk":
                parent = family.table(c.references or "")
                spec += f" REFERENCES {parent.name}({parent.pk.name})"
            lines.append(spec)
        stmts.append(f"CREATE TABLE {t.name} (\n" + ",\n".join(lines) + "\n);")
    return "\n\n".join(stmts) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Column constructors (keep the family definitions short).


def _pk(name: str, nl: str) -> Column:
    return Column(name, "INTEGER", "id", nl)


def _fk(name: str, ref: str, nl: str, null_rate: float = 0.0, zipf: float = 0.8) -> Column:
    return Column(name, "INTEGER", "fk", nl, null_rate=null_rate, references=ref, zipf=zipf)


def _person(name: str = "name", nl: str = "name", null_rate: float = 0.0) -> Column:
    return Column(name, "TEXT", "person_name", nl, null_rate=null_rate)


def _ename(name: str, nl: str, style: str, unique: bool = False) -> Column:
    return Column(name, "TEXT", "name", nl, style=style, unique=unique)


def _code(name: str, nl: str, style: str) -> Column:
    return Column(name, "TEXT", "code", nl, style=style, unique=True)


def _cat(name: str, nl: str, vocab: tuple[str, ...], null_rate: float = 0.0, zipf: float = 1.0) -> Column:
    return Column(name, "TEXT", "categorical", nl, null_rate=null_rate, vocab=vocab, zipf=zipf)


def _int(name: str, nl: str, low: int, high: int, dist: str = "uniform", step: float = 1, null_rate: float = 0.0) -> Column:
    return Column(name, "INTEGER", "numeric", nl, low=low, high=high, dist=dist, step=step, null_rate=null_rate)


def _real(name: str, nl: str, low: float, high: float, dist: str = "normal", step: float = 0.1, null_rate: float = 0.0) -> Column:
    return Column(name, "REAL", "numeric", nl, low=low, high=high, dist=dist, step=step, null_rate=null_rate)


def _money(name: str, nl: str, low: float, high: float, dist: str = "skew", step: float = 0.5, null_rate: float = 0.0) -> Column:
    return Column(name, "REAL", "money", nl, low=low, high=high, dist=dist, step=step, null_rate=null_rate)


def _date(
    name: str,
    nl: str,
    start: str = "",
    end: str = "",
    null_rate: float = 0.0,
    after: str = "",
    after_days: tuple[int, int] = (1, 30),
) -> Column:
    return Column(name, "DATE", "date", nl, start=start, end=end, null_rate=null_rate, after=after, after_days=after_days)


def _flag(name: str, nl: str, true_phrase: str, p_true: float = 0.5) -> Column:
    return Column(name, "INTEGER", "bool", nl, p_true=p_true, true_phrase=true_phrase)


def _text(name: str, nl: str, null_rate: float = 0.6) -> Column:
    return Column(name, "TEXT", "free_text", nl, null_rate=null_rate)


# ---------------------------------------------------------------------------------------------------------------
# Shared vocabularies (no apostrophes: literals are rendered in single quotes).

CITIES = (
    "Springfield", "Riverton", "Lakeside", "Fairview", "Greenville", "Madison", "Georgetown", "Franklin",
    "Clinton", "Salem", "Ashland", "Milton",
)
COUNTRIES = (
    "United States", "Canada", "Mexico", "Brazil", "United Kingdom", "France", "Germany", "Spain", "Italy",
    "Japan", "India", "Australia",
)

RETAIL = SchemaFamily(
    "retail",
    "an online and in-store retailer",
    (
        Table("customers", "customer", (
            _pk("customer_id", "customer id"),
            _person(),
            _cat("city", "city", CITIES),
            _cat("segment", "segment", ("Consumer", "Corporate", "Home Office", "Small Business", "Government")),
            _date("signup_date", "signup date", "2016-01-01", "2023-12-31"),
            _int("loyalty_points", "loyalty point balance", 0, 5000, dist="skew", step=10, null_rate=0.2),
        ), (80, 150), "name"),
        Table("products", "product", (
            _pk("product_id", "product id"),
            _ename("name", "name", "product"),
            _cat("category", "category", ("Electronics", "Toys", "Clothing", "Home", "Garden", "Sports", "Books", "Beauty", "Grocery")),
            _cat("brand", "brand", ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay")),
            _money("price", "price", 2, 900, step=0.5),
            _real("weight_kg", "weight in kg", 0.1, 25.0, dist="skew", null_rate=0.25),
            _flag("in_stock", "in stock flag", "in stock", p_true=0.7),
        ), (60, 120), "name"),
        Table("stores", "store", (
            _pk("store_id", "store id"),
            _ename("name", "name", "store", unique=True),
            _cat("city", "city", CITIES),
            _cat("region", "region", ("North", "South", "East", "West", "Central")),
            _date("opened_date", "opening date", "2005-01-01", "2022-12-31"),
            _int("floor_area", "floor area", 800, 12000, dist="normal", step=50),
        ), (30, 45), "name"),
        Table("orders", "order", (
            _pk("order_id", "order id"),
            _fk("customer_id", "customers", "customer"),
            _fk("store_id", "stores", "store", zipf=0.6),
            _date("order_date", "order date", "2019-01-01", "2024-06-30"),
            _cat("status", "status", ("delivered", "shipped", "processing", "returned", "cancelled")),
            _money("shipping_cost", "shipping cost", 0, 40, dist="skew", step=0.5, null_rate=0.15),
            _text("note", "note", null_rate=0.75),
        ), (200, 350), "order_id"),
        Table("order_items", "order item", (
            _pk("item_id", "item id"),
            _fk("order_id", "orders", "order", zipf=0.3),
            _fk("product_id", "products", "product"),
            _int("quantity", "quantity", 1, 12, dist="skew"),
            _money("unit_price", "unit price", 2, 900, step=0.5),
            _real("discount", "discount", 0.0, 0.5, dist="skew", step=0.05, null_rate=0.4),
        ), (300, 400), "item_id"),
    ),
)

SCHOOL = SchemaFamily(
    "school",
    "a secondary school",
    (
        Table("teachers", "teacher", (
            _pk("teacher_id", "teacher id"),
            _person(),
            _cat("department", "department", ("Mathematics", "Science", "English", "History", "Arts", "Languages", "Physical Education")),
            _date("hire_date", "hire date", "2000-01-01", "2023-08-31"),
            _money("salary", "salary", 38000, 98000, dist="normal", step=500),
            _code("office", "office", "room"),
        ), (30, 50), "name"),
        Table("students", "student", (
            _pk("student_id", "student id"),
            _person(),
            _int("grade_level", "grade level", 9, 12),
            _real("gpa", "GPA", 1.5, 4.0, dist="normal", step=0.1, null_rate=0.15),
            _date("enrollment_date", "enrollment date", "2018-08-15", "2023-09-15"),
            _cat("city", "home city", CITIES),
            _flag("scholarship", "scholarship flag", "on a scholarship", p_true=0.25),
        ), (150, 300), "name"),
        Table("courses", "course", (
            _pk("course_id", "course id"),
            _ename("title", "title", "course", unique=True),
            _cat("subject", "subject", ("Algebra", "Biology", "Chemistry", "Literature", "World History", "Painting", "Spanish", "French", "Physics", "Geometry")),
            _fk("teacher_id", "teachers", "teacher"),
            _int("credits", "number of credits", 1, 5),
            _int("capacity", "capacity", 12, 40, step=2),
            _cat("level", "level", ("Intro", "Intermediate", "Advanced", "Honors")),
        ), (40, 70), "title"),
        Table("enrollments", "enrollment", (
            _pk("enrollment_id", "enrollment id"),
            _fk("student_id", "students", "student"),
            _fk("course_id", "courses", "course"),
            _date("enrolled_on", "enrollment date", "2019-08-20", "2024-01-31"),
            _real("grade", "grade", 40, 100, dist="normal", step=0.5, null_rate=0.2),
            _cat("status", "status", ("active", "completed", "dropped", "incomplete")),
        ), (300, 400), "enrollment_id"),
    ),
)

HOSPITAL = SchemaFamily(
    "hospital",
    "a regional hospital",
    (
        Table("doctors", "doctor", (
            _pk("doctor_id", "doctor id"),
            _person(),
            _cat("specialty", "specialty", ("Cardiology", "Neurology", "Pediatrics", "Oncology", "Orthopedics", "Dermatology", "Radiology", "Surgery")),
            _date("hire_date", "hire date", "1998-01-01", "2023-06-30"),
            _int("years_experience", "experience in years", 1, 35, dist="skew"),
            _money("consultation_fee", "consultation fee", 60, 400, dist="normal", step=5),
        ), (30, 50), "name"),
        Table("patients", "patient", (
            _pk("patient_id", "patient id"),
            _person(),
            _date("birth_date", "birth date", "1935-01-01", "2020-12-31"),
            _cat("gender", "gender", ("female", "male", "other"), zipf=0.3),
            _cat("blood_type", "blood type", ("O+", "A+", "B+", "AB+", "O-", "A-", "B-", "AB-"), zipf=1.3),
            _cat("city", "city", CITIES),
            _cat("insurance", "insurance provider", ("MediCare Plus", "HealthFirst", "Unity Health", "CareShield", "Allied Mutual"), null_rate=0.2),
        ), (150, 300), "name"),
        Table("wards", "ward", (
            _pk("ward_id", "ward id"),
            _ename("name", "name", "ward", unique=True),
            _int("floor", "floor", 1, 8),
            _int("capacity", "bed capacity", 8, 40, step=2),
            _cat("ward_type", "ward type", ("General", "Intensive Care", "Maternity", "Pediatric", "Surgical", "Recovery")),
        ), (30, 40), "name"),
        Table("admissions", "admission", (
            _pk("admission_id", "admission id"),
            _fk("patient_id", "patients", "patient"),
            _fk("doctor_id", "doctors", "doctor"),
            _fk("ward_id", "wards", "ward", zipf=0.5),
            _date("admit_date", "admission date", "2019-01-01", "2024-05-31"),
            _date("discharge_date", "discharge date", null_rate=0.15, after="admit_date", after_days=(1, 40)),
            _cat("diagnosis", "diagnosis", ("Influenza", "Fracture", "Pneumonia", "Migraine", "Appendicitis", "Hypertension", "Diabetes", "Asthma", "Concussion")),
            _money("total_cost", "total cost", 200, 40000, step=10),
        ), (250, 400), "admission_id"),
        Table("prescriptions", "prescription", (
            _pk("prescription_id", "prescription id"),
            _fk("admission_id", "admissions", "admission", zipf=0.4),
            _cat("medication", "medication", ("Amoxicillin", "Ibuprofen", "Paracetamol", "Metformin", "Lisinopril", "Atorvastatin", "Omeprazole", "Albuterol")),
            _int("dosage_mg", "dosage in mg", 50, 1000, dist="skew", step=50),
            _int("days", "number of days", 1, 30, dist="skew"),
            _flag("refillable", "refillable flag", "refillable", p_true=0.35),
        ), (200, 400), "prescription_id"),
    ),
)

FLIGHTS = SchemaFamily(
    "flights",
    "an airline booking system",
    (
        Table("airports", "airport", (
            _pk("airport_id", "airport id"),
            _code("code", "code", "airport"),
            _cat("city", "city", CITIES),
            _cat("country", "country", COUNTRIES),
            _int("elevation_m", "elevation in meters", 0, 2400, dist="skew", step=5, null_rate=0.15),
        ), (30, 45), "code"),
        Table("airlines", "airline", (
            _pk("airline_id", "airline id"),
            _ename("name", "name", "airline", unique=True),
            _cat("country", "country", COUNTRIES),
            _int("founded_year", "founding year", 1920, 2015),
            _cat("alliance", "alliance", ("Star Alliance", "Oneworld", "SkyTeam"), null_rate=0.3),
        ), (30, 40), "name"),
        Table("flights", "flight", (
            _pk("flight_id", "flight id"),
            _code("flight_number", "flight number", "flight"),
            _fk("airline_id", "airlines", "airline"),
            _fk("origin_id", "airports", "origin airport"),
            _fk("destination_id", "airports", "destination airport"),
            _date("departure_date", "departure date", "2020-01-01", "2024-06-30"),
            _int("duration_min", "duration in minutes", 45, 720, dist="skew", step=5),
            _int("distance_km", "distance in km", 200, 9000, dist="skew", step=10),
            _cat("status", "status", ("on time", "delayed", "cancelled", "diverted")),
        ), (200, 350), "flight_number"),
        Table("passengers", "passenger", (
            _pk("passenger_id", "passenger id"),
            _person(),
            _cat("nationality", "nationality", COUNTRIES),
            _date("birth_date", "birth date", "1945-01-01", "2012-12-31"),
            _flag("frequent_flyer", "frequent flyer flag", "enrolled in the frequent flyer program", p_true=0.3),
        ), (150, 250), "name"),
        Table("bookings", "booking", (
            _pk("booking_id", "booking id"),
            _fk("flight_id", "flights", "flight", zipf=0.4),
            _fk("passenger_id", "passengers", "passenger"),
            _cat("seat_class", "seat class", ("Economy", "Premium Economy", "Business", "First"), zipf=1.4),
            _money("price", "price", 40, 3500, step=5),
            _date("booking_date", "booking date", "2019-10-01", "2024-06-15"),
        ), (300, 400), "booking_id"),
    ),
)

LIBRARY = SchemaFamily(
    "library",
    "a public library",
    (
        Table("authors", "author", (
            _pk("author_id", "author id"),
            _person(),
            _cat("nationality", "nationality", COUNTRIES),
            _int("birth_year", "birth year", 1850, 1995, dist="normal", null_rate=0.2),
        ), (40, 80), "name"),
        Table("books", "book", (
            _pk("book_id", "book id"),
            _ename("title", "title", "book"),
            _fk("author_id", "authors", "author"),
            _cat("genre", "genre", ("Fiction", "Mystery", "Science Fiction", "Biography", "History", "Fantasy", "Romance", "Poetry", "Science")),
            _int("publication_year", "publication year", 1950, 2023, dist="normal"),
            _int("pages", "number of pages", 80, 1100, dist="skew", step=2),
            _cat("publisher", "publisher", ("Penguin", "Harper", "Orbit", "Vintage", "Scribner", "Tor", "Faber")),
            _money("price", "price", 5, 60, dist="normal", step=0.5, null_rate=0.1),
        ), (100, 200), "title"),
        Table("members", "member", (
            _pk("member_id", "member id"),
            _person(),
            _date("join_date", "join date", "2012-01-01", "2023-12-31"),
            _cat("membership_type", "membership type", ("Standard", "Student", "Senior", "Family", "Premium")),
            _cat("city", "city", CITIES),
            _text("phone", "phone note", null_rate=0.5),
        ), (100, 200), "name"),
        Table("loans", "loan", (
            _pk("loan_id", "loan id"),
            _fk("book_id", "books", "book"),
            _fk("member_id", "members", "member"),
            _date("loan_date", "loan date", "2020-01-01", "2024-05-31"),
            _date("due_date", "due date", after="loan_date", after_days=(14, 28)),
            _date("return_date", "return date", null_rate=0.2, after="loan_date", after_days=(1, 60)),
            _money("late_fee", "late fee", 0.5, 25, dist="skew", step=0.5, null_rate=0.7),
        ), (300, 400), "loan_id"),
    ),
)

HR = SchemaFamily(
    "hr",
    "a company human-resources system",
    (
        Table("departments", "department", (
            _pk("department_id", "department id"),
            _ename("name", "name", "department", unique=True),
            _cat("location", "location", CITIES),
            _money("budget", "budget", 50000, 2000000, step=1000),
        ), (12, 20), "name"),
        Table("employees", "employee", (
            _pk("employee_id", "employee id"),
            _person(),
            _fk("department_id", "departments", "department"),
            _cat("job_title", "job title", ("Engineer", "Analyst", "Manager", "Sales Representative", "Designer", "Accountant", "Technician", "Consultant", "Administrator")),
            _date("hire_date", "hire date", "2008-01-01", "2024-03-31"),
            _money("salary", "salary", 32000, 185000, step=500),
            _fk("manager_id", "employees", "manager", null_rate=0.02),
            _money("bonus", "bonus", 500, 25000, step=250, null_rate=0.4),
            _flag("remote", "remote flag", "working remotely", p_true=0.3),
        ), (150, 300), "name"),
        Table("projects", "project", (
            _pk("project_id", "project id"),
            _ename("name", "name", "project", unique=True),
            _fk("department_id", "departments", "department"),
            _date("start_date", "start date", "2016-01-01", "2023-12-31"),
            _date("end_date", "end date", null_rate=0.3, after="start_date", after_days=(30, 900)),
            _money("budget", "budget", 10000, 900000, step=1000),
            _cat("status", "status", ("active", "completed", "on hold", "planned", "cancelled")),
        ), (40, 80), "name"),
        Table("assignments", "assignment", (
            _pk("assignment_id", "assignment id"),
            _fk("employee_id", "employees", "employee"),
            _fk("project_id", "projects", "project"),
            _cat("role", "role", ("Contributor", "Lead", "Reviewer", "Advisor", "Tester")),
            _int("hours_per_week", "weekly hours", 2, 40, dist="skew"),
            _date("assigned_date", "assignment date", "2016-02-01", "2024-03-31"),
        ), (200, 400), "assignment_id"),
    ),
)

MUSIC = SchemaFamily(
    "music",
    "a music streaming service",
    (
        Table("artists", "artist", (
            _pk("artist_id", "artist id"),
            _ename("name", "name", "band"),
            _cat("country", "country", COUNTRIES),
            _cat("genre", "genre", ("Rock", "Pop", "Jazz", "Hip Hop", "Classical", "Electronic", "Country", "Blues", "Folk", "Metal")),
            _int("formed_year", "formation year", 1960, 2020, null_rate=0.15),
        ), (40, 80), "name"),
        Table("albums", "album", (
            _pk("album_id", "album id"),
            _ename("title", "title", "album"),
            _fk("artist_id", "artists", "artist"),
            _date("release_date", "release date", "1995-01-01", "2024-05-31"),
            _cat("label", "record label", ("Sunset Records", "Blue Note", "Echo Park", "Northern Lights", "Indie House", "Atlas Music")),
            _money("price", "price", 4.99, 24.99, dist="uniform", step=1.0, null_rate=0.1),
        ), (100, 200), "title"),
        Table("tracks", "track", (
            _pk("track_id", "track id"),
            _ename("title", "title", "track"),
            _fk("album_id", "albums", "album", zipf=0.3),
            _int("duration_sec", "duration in seconds", 90, 540, dist="normal"),
            _int("track_number", "track number", 1, 14),
            _flag("explicit", "explicit flag", "explicit", p_true=0.2),
            _int("plays", "play count", 0, 2000000, dist="skew", step=100),
        ), (300, 400), "title"),
        Table("listeners", "listener", (
            _pk("listener_id", "listener id"),
            _person(),
            _cat("country", "country", COUNTRIES),
            _date("signup_date", "signup date", "2015-01-01", "2024-04-30"),
            _cat("subscription", "subscription plan", ("Free", "Premium", "Family", "Student")),
            _int("age", "age", 13, 80, dist="skew", null_rate=0.2),
        ), (100, 200), "name"),
        Table("streams", "stream", (
            _pk("stream_id", "stream id"),
            _fk("track_id", "tracks", "track"),
            _fk("listener_id", "listeners", "listener"),
            _date("stream_date", "stream date", "2021-01-01", "2024-06-30"),
            _int("seconds_played", "seconds played", 5, 540, dist="skew"),
            _cat("device", "device", ("phone", "desktop", "tablet", "smart speaker", "car")),
        ), (300, 400), "stream_id"),
    ),
)

REAL_ESTATE = SchemaFamily(
    "real_estate",
    "a real-estate agency",
    (
        Table("agents", "agent", (
            _pk("agent_id", "agent id"),
            _person(),
            _cat("agency", "agency", ("Keystone Realty", "Harbor Homes", "Summit Properties", "Oak and Stone", "Bluebird Estates")),
            _date("license_date", "license date", "2000-01-01", "2023-06-30"),
            _real("commission_rate", "commission rate", 1.5, 6.0, dist="normal", step=0.25),
        ), (30, 50), "name"),
        Table("neighborhoods", "neighborhood", (
            _pk("neighborhood_id", "neighborhood id"),
            _ename("name", "name", "neighborhood", unique=True),
            _cat("city", "city", CITIES),
            _money("median_income", "median income", 28000, 160000, dist="normal", step=1000),
            _int("walk_score", "walk score", 10, 99, null_rate=0.2),
        ), (30, 40), "name"),
        Table("properties", "property", (
            _pk("property_id", "property id"),
            _ename("address", "address", "address", unique=True),
            _fk("neighborhood_id", "neighborhoods", "neighborhood"),
            _cat("property_type", "property type", ("Single Family", "Condo", "Townhouse", "Duplex", "Apartment", "Cottage")),
            _int("bedrooms", "number of bedrooms", 1, 6, dist="normal"),
            _int("area_sqft", "area in square feet", 450, 5200, dist="skew", step=10),
            _int("year_built", "year built", 1900, 2023, dist="normal", null_rate=0.15),
            _flag("has_garage", "garage flag", "equipped with a garage", p_true=0.45),
        ), (150, 300), "address"),
        Table("listings", "listing", (
            _pk("listing_id", "listing id"),
            _fk("property_id", "properties", "property", zipf=0.4),
            _fk("agent_id", "agents", "agent"),
            _date("list_date", "listing date", "2018-01-01", "2024-05-31"),
            _money("asking_price", "asking price", 85000, 1800000, step=1000),
            _cat("status", "status", ("active", "sold", "withdrawn", "pending", "expired")),
        ), (200, 350), "listing_id"),
        Table("sales", "sale", (
            _pk("sale_id", "sale id"),
            _fk("listing_id", "listings", "listing", zipf=0.2),
            _person("buyer_name", "buyer name"),
            _date("sale_date", "sale date", "2018-03-01", "2024-06-30"),
            _money("sale_price", "sale price", 80000, 1750000, step=1000),
            _cat("financing", "financing type", ("Mortgage", "Cash", "FHA Loan", "VA Loan"), null_rate=0.15),
        ), (80, 200), "sale_id"),
    ),
)

SPORTS = SchemaFamily(
    "sports",
    "an amateur sports league",
    (
        Table("venues", "venue", (
            _pk("venue_id", "venue id"),
            _ename("name", "name", "venue", unique=True),
            _cat("city", "city", CITIES),
            _int("capacity", "seating capacity", 500, 60000, dist="skew", step=100),
            _int("opened_year", "opening year", 1920, 2022, null_rate=0.2),
        ), (30, 40), "name"),
        Table("teams", "team", (
            _pk("team_id", "team id"),
            _ename("name", "name", "team", unique=True),
            _cat("division", "division", ("Premier", "Championship", "League One", "League Two")),
            _fk("venue_id", "venues", "home venue"),
            _date("founded_date", "founding date", "1950-01-01", "2020-12-31"),
            _money("payroll", "payroll", 200000, 9000000, step=10000),
        ), (30, 48), "name"),
        Table("players", "player", (
            _pk("player_id", "player id"),
            _person(),
            _fk("team_id", "teams", "team"),
            _cat("position", "position", ("Forward", "Midfielder", "Defender", "Goalkeeper"), zipf=0.6),
            _date("birth_date", "birth date", "1985-01-01", "2006-12-31"),
            _int("jersey_number", "jersey number", 1, 99),
            _real("height_cm", "height in cm", 160, 205, dist="normal", step=1, null_rate=0.15),
            _money("salary", "salary", 20000, 900000, step=5000),
        ), (200, 400), "name"),
        Table("matches", "match", (
            _pk("match_id", "match id"),
            _fk("home_team_id", "teams", "home team"),
            _fk("away_team_id", "teams", "away team"),
            _fk("venue_id", "venues", "venue"),
            _date("match_date", "match date", "2019-08-01", "2024-05-31"),
            _int("home_goals", "number of home goals", 0, 7, dist="skew"),
            _int("away_goals", "number of away goals", 0, 6, dist="skew"),
            _int("attendance", "attendance", 200, 55000, dist="skew", step=10, null_rate=0.1),
        ), (150, 300), "match_id"),
    ),
)

FAMILIES: dict[str, SchemaFamily] = {
    f.name: f for f in (RETAIL, SCHOOL, HOSPITAL, FLIGHTS, LIBRARY, HR, MUSIC, REAL_ESTATE, SPORTS)
}
