"""The embedded demo data: a DuckDB warehouse file and a DuckDB-backed demo CRM file.

Both files are generated column-wise with numpy's ``default_rng`` (one stream per part,
seeded with ``[seed, part]``), so the same ``seed`` and ``scale`` give the same values whatever
the thread count: no value depends on the clock, on threads or on row order in DuckDB, and
every value is stored as an integer, a date, whole cents or a rounded number, so a last-bit
difference in a platform's ``exp``/``log`` shows only on an exact rounding tie. Every date is
relative to the fixed ``REFERENCE_DATE``, never to today.

The two files are generated independently but consistently: the CRM's companies are the
warehouse's accounts (``companies.hs_object_id == analytics.accounts.account_id`` and
``companies.name == analytics.accounts.account_name``), because both are built from the same
random stream.

Scale 1 is about 10,000 accounts, 50,000 deals and 30,000 contacts; row counts grow linearly
with ``scale`` (a float > 0; 0.1 for fast tests, 100 for benchmarks).

The warehouse and the CRM are one data set: a warehouse from one generation with a CRM from
another would join accounts to companies that are not theirs, silently. Each file records how
it was made (table ``playbook_demo_dataset``: kind, seed, scale, generator version and the
files generated with it), ``write_demo_dataset`` (``playbook demo init``) builds every file of
the set before it moves any into place, and opening a file checks its partners: one that is
missing is generated with the same seed and scale; one from another generation is an error
saying how to regenerate the set.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playbook_assets.core.errors import (
    PlaybookValidationError,
    SourceUnreachableError,
    TerminalStepError,
)

REFERENCE_DATE = date(2026, 11, 1)
"""The fixed "today" of the demo data: renewals, deals and usage are placed around it."""

ACCOUNTS_PER_SCALE = 10_000
DEALS_PER_SCALE = 50_000
CONTACTS_PER_SCALE = 30_000

WAREHOUSE_SCHEMA = "analytics"

SEGMENTS = ("enterprise", "mid-market", "smb")
SEGMENT_SHARES = (0.15, 0.35, 0.50)
HEALTH_STATUSES = ("Healthy", "Neutral", "At-Risk", "Churned")
HEALTH_SHARES = (0.50, 0.30, 0.15, 0.05)
# Inclusive health_score range of each status: >=70 Healthy, 50-69 Neutral, 25-49 At-Risk.
HEALTH_SCORE_RANGES = ((70, 100), (50, 69), (25, 49), (0, 24))
# ARR range (dollars) and median of each segment.
ARR_RANGES = ((100_000, 1_500_000, 350_000), (20_000, 200_000, 60_000), (2_000, 30_000, 8_000))
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
PLANS = ("starter", "growth", "enterprise")
INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Media",
    "Logistics",
    "Energy",
    "Telecommunications",
    "Hospitality",
    "Real Estate",
)
CSM_EMAILS = (
    "olivia.bennett@example.com",
    "liam.carter@example.com",
    "sophia.nguyen@example.com",
    "noah.patel@example.com",
    "emma.rossi@example.com",
    "lucas.schmidt@example.com",
    "ava.tanaka@example.com",
    "ethan.brooks@example.com",
    "mia.fernandez@example.com",
    "mason.okafor@example.com",
    "isabella.kowalski@example.com",
    "logan.dubois@example.com",
)
# HubSpot owner ids: the CSMs own the accounts (and their renewals and expansions), the
# account executives own new business.
CSM_OWNER_IDS = tuple(81_000_001 + i for i in range(len(CSM_EMAILS)))
AE_OWNER_IDS = tuple(82_000_001 + i for i in range(6))
TICKET_PRIORITIES = ("low", "medium", "high", "urgent")
TICKET_STATUSES = ("open", "pending", "closed")
USAGE_MONTHS = tuple(date(2026, month, 1) for month in range(5, 11))

DEAL_KINDS = ("New business", "Renewal", "Expansion")
DEAL_TYPES = ("newbusiness", "existingbusiness", "existingbusiness")
OPEN_DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
)
DEAL_STAGES = (*OPEN_DEAL_STAGES, "closedwon", "closedlost")
CONTACT_LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)

# fmt: off
_NAME_PREFIXES = (
    "Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli",
    "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Aperture", "Blue Harbor", "Silver Peak",
    "Red Rock", "Green Valley", "Iron Bridge", "Golden Gate", "Summit", "Pinnacle", "Apex",
    "Vertex", "Horizon", "Evergreen", "Lighthouse", "Keystone", "Cornerstone", "Bluebird",
    "Falcon", "Eagle", "Orion", "Polaris", "Atlas", "Titan", "Nimbus", "Cascade", "Redwood",
    "Maple", "Cedar", "Willow", "Aspen", "Sequoia", "Granite", "Quartz", "Cobalt", "Crimson",
    "Indigo", "Amber", "Ivory", "Onyx", "Sapphire", "Emerald", "Juniper", "Meridian", "Zenith",
    "Nova", "Stellar", "Lunar", "Solaris", "Quantum", "Vector", "Matrix", "Nexus", "Fusion",
    "Catalyst", "Momentum", "Velocity", "Kinetic", "Brightline", "Clearwater", "Stonebridge",
    "Riverside", "Lakeshore", "Highland", "Prairie", "Harbor", "Coastal", "Northstar",
    "Southpoint", "Eastgate", "Westfield", "Oakridge", "Pinecrest", "Fairview", "Brookside",
    "Sunrise", "Twin Oaks", "Blackstone", "Whitestone", "Greystone", "Copperleaf", "Ironwood",
    "Driftwood", "Starlight", "Moonstone", "Bright Path", "Open Field", "True North",
)
_NAME_NOUNS = (
    "Analytics", "Systems", "Logistics", "Health", "Foods", "Software", "Labs", "Dynamics",
    "Networks", "Solutions", "Technologies", "Energy", "Capital", "Media", "Robotics",
    "Consulting", "Manufacturing", "Retail", "Security", "Cloud", "Data", "Devices", "Motors",
    "Pharma", "Biotech", "Insurance", "Finance", "Learning", "Studios", "Telecom", "Travel",
    "Hospitality", "Properties", "Industries", "Ventures", "Works", "Supply", "Design",
    "Engineering", "Instruments", "Materials", "Outfitters", "Brands", "Interactive", "Payments",
    "Marketing", "Partners", "Holdings", "Services", "Group",
)
_NAME_SUFFIXES = (
    "", "Inc", "Corp", "LLC", "Co", "Ltd", "International", "Global",
)
_FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Steven", "Ashley", "Paul", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin",
    "Melissa", "Brian", "Stephanie", "Priya", "Wei", "Yuki", "Carlos", "Fatima", "Ahmed", "Ingrid",
    "Lars", "Chiara", "Mateo", "Aisha", "Kenji", "Sofia", "Omar", "Elena", "Raj", "Hana", "Diego",
    "Zara", "Tomas",
)
_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Chen", "Kim", "Singh", "Khan", "Mueller", "Schneider",
    "Rossi", "Bianchi", "Dubois", "Lefebvre", "Tanaka", "Suzuki", "Kowalski", "Novak", "Larsen",
    "Johansson", "Okafor", "Mensah", "Silva", "Costa",
)
_JOB_TITLES = (
    "CEO", "CFO", "CTO", "VP of Sales", "VP of Marketing", "Head of Operations",
    "Director of Engineering", "Data Analyst", "Product Manager", "Sales Manager",
    "Account Executive", "Marketing Manager", "Customer Success Manager", "IT Director",
    "Procurement Manager", "Software Engineer", "Operations Analyst", "RevOps Manager",
)
# fmt: on
_FREE_EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me")

# Random streams: one per generated part, so that parts stay identical when others change.
_STREAM_ACCOUNTS = 1
_STREAM_USAGE = 2
_STREAM_TICKETS = 3
_STREAM_COMPANIES = 10
_STREAM_DEALS = 11
_STREAM_CONTACTS = 12

_EPOCH = date(1970, 1, 1)
_REF_DAY = (REFERENCE_DATE - _EPOCH).days
_US_PER_DAY = 86_400_000_000
_US_PER_SECOND = 1_000_000

# Column name -> DuckDB type of every table, in column order.
WAREHOUSE_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "accounts": (
        ("account_id", "BIGINT"),
        ("account_name", "VARCHAR"),
        ("segment", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("region", "VARCHAR"),
        ("employees", "INTEGER"),
        ("health_score", "INTEGER"),
        ("health_status", "VARCHAR"),
        ("arr", "DECIMAL(12,2)"),
        ("owner_email", "VARCHAR"),
        ("renewal_date", "DATE"),
        ("created_at", "DATE"),
        ("plan", "VARCHAR"),
        ("seats_purchased", "INTEGER"),
        ("seats_used", "INTEGER"),
    ),
    "product_usage": (
        ("account_id", "BIGINT"),
        ("month", "DATE"),
        ("active_users", "INTEGER"),
        ("logins", "INTEGER"),
        ("feature_adoption_pct", "DOUBLE"),
        ("api_calls", "BIGINT"),
    ),
    "support_tickets": (
        ("ticket_id", "BIGINT"),
        ("account_id", "BIGINT"),
        ("opened_at", "DATE"),
        ("priority", "VARCHAR"),
        ("status", "VARCHAR"),
        ("csat", "INTEGER"),
    ),
}
CRM_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "companies": (
        ("hs_object_id", "BIGINT"),
        ("name", "VARCHAR"),
        ("domain", "VARCHAR"),
        ("industry", "VARCHAR"),
        ("annualrevenue", "DECIMAL(18,2)"),
        ("numberofemployees", "INTEGER"),
        ("lifecyclestage", "VARCHAR"),
        ("createdate", "TIMESTAMP"),
        ("hs_lastmodifieddate", "TIMESTAMP"),
        ("hubspot_owner_id", "BIGINT"),
    ),
    "deals": (
        ("hs_object_id", "BIGINT"),
        ("dealname", "VARCHAR"),
        ("amount", "DECIMAL(12,2)"),
        ("closedate", "DATE"),
        ("dealstage", "VARCHAR"),
        ("pipeline", "VARCHAR"),
        ("dealtype", "VARCHAR"),
        ("hs_is_closed", "BOOLEAN"),
        ("hubspot_owner_id", "BIGINT"),
        ("createdate", "TIMESTAMP"),
        ("hs_lastmodifieddate", "TIMESTAMP"),
    ),
    "deal_company": (("deal_id", "BIGINT"), ("company_id", "BIGINT")),
    "contacts": (
        ("hs_object_id", "BIGINT"),
        ("email", "VARCHAR"),
        ("firstname", "VARCHAR"),
        ("lastname", "VARCHAR"),
        ("jobtitle", "VARCHAR"),
        ("lifecyclestage", "VARCHAR"),
        ("hs_lead_status", "VARCHAR"),
        ("createdate", "TIMESTAMP"),
        ("lastmodifieddate", "TIMESTAMP"),
    ),
    "contact_company": (("contact_id", "BIGINT"), ("company_id", "BIGINT")),
}


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def demo_row_counts(scale: float = 1.0) -> dict[str, int]:
    """Accounts, deals and contacts generated at ``scale`` (the other tables derive from them)."""
    _check_scale(scale)
    return {
        "accounts": _scaled(ACCOUNTS_PER_SCALE, scale),
        "deals": _scaled(DEALS_PER_SCALE, scale),
        "contacts": _scaled(CONTACTS_PER_SCALE, scale),
    }


DEMO_GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes, so files of different versions differ."""

DATASET_TABLE = "playbook_demo_dataset"
WAREHOUSE = "warehouse"
CRM = "crm"


@dataclass(frozen=True)
class DemoFileInfo:
    """How a demo file was generated, as recorded in it."""

    kind: str  # WAREHOUSE or CRM
    seed: int
    scale: float
    version: int
    # Every file generated with it, as (kind, absolute path): the data set it belongs to.
    members: tuple[tuple[str, str], ...]

    @property
    def generation(self) -> tuple[int, float, int]:
        """What makes two files' data agree: same seed, scale and generator version."""
        return (self.seed, self.scale, self.version)

    def describe(self) -> str:
        """The generation in words."""
        return f"scale {self.scale:g}, seed {self.seed}, generator version {self.version}"


def write_demo_warehouse(
    path: Path,
    scale: float = 1.0,
    seed: int = 42,
    *,
    dataset: Sequence[tuple[str, Path]] = (),
) -> dict[str, int]:
    """Write the demo warehouse (schema ``analytics``) to ``path``, atomically.

    Returns the row count of each table, keyed ``analytics.<table>``. An existing file at
    ``path`` is replaced. ``dataset``: the other files generated with it (see the module).
    """
    tmp = _temporary(path)
    try:
        counts = _build_warehouse(tmp, scale, seed, _members(WAREHOUSE, path, dataset))
        os.replace(tmp, path)
    finally:
        _discard(tmp)
    return counts


def write_demo_crm(
    path: Path,
    scale: float = 1.0,
    seed: int = 42,
    *,
    dataset: Sequence[tuple[str, Path]] = (),
) -> dict[str, int]:
    """Write the demo CRM (tables named by HubSpot object type) to ``path``, atomically.

    Tables: ``companies`` (one per warehouse account, same id and name), ``deals``,
    ``contacts`` and the associations ``deal_company`` and ``contact_company``. Returns the
    row count of each table. An existing file at ``path`` is replaced. ``dataset``: the
    other files generated with it (see the module).
    """
    tmp = _temporary(path)
    try:
        counts = _build_crm(tmp, scale, seed, _members(CRM, path, dataset))
        os.replace(tmp, path)
    finally:
        _discard(tmp)
    return counts


def write_demo_dataset(
    files: Sequence[tuple[str, Path]], scale: float = 1.0, seed: int = 42
) -> dict[Path, dict[str, int]]:
    """Generate a whole demo data set (``(kind, path)`` of each file) as one: every file is
    built under a temporary name first, and all are moved into place together while their
    locks are held, so a process killed while generating leaves the previous set whole.
    Returns each file's row counts."""
    members = _members_of(files)
    temporaries = {Path(path): _temporary(Path(path)) for _, path in members}
    builders = {WAREHOUSE: _build_warehouse, CRM: _build_crm}
    with contextlib.ExitStack() as locks:
        for _, path in sorted(members, key=lambda member: member[1]):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            locks.enter_context(_exclusive_lock(_lock_path(Path(path))))
        try:
            counts = {
                Path(path): builders[kind](temporaries[Path(path)], scale, seed, members)
                for kind, path in members
            }
            for path, tmp in temporaries.items():
                os.replace(tmp, path)
        finally:
            for tmp in temporaries.values():
                _discard(tmp)
    return {Path(path): counts[_absolute(Path(path))] for _, path in files}


def dataset_problem(files: Sequence[tuple[str, Path]]) -> str | None:
    """Why these files are not one complete demo data set, or None when they are."""
    infos: dict[Path, DemoFileInfo | None] = {}
    for _, path in files:
        if not Path(path).exists():
            return f"{path} is missing"
        infos[Path(path)] = read_demo_info(Path(path))
    generations = {info.generation if info else None for info in infos.values()}
    if len(generations) > 1:
        return "the files come from different generations: " + "; ".join(
            f"{path}: {info.describe() if info else 'no record of its generation'}"
            for path, info in infos.items()
        )
    return None


def read_demo_info(path: Path) -> DemoFileInfo | None:
    """How a demo file was generated; None for a file that does not record it."""
    try:
        # Attached to a connection of its own rather than opened: DuckDB refuses a second
        # connection to a file that this process has open with other settings (a step may be
        # querying it with its connection's `threads`).
        with duckdb.connect(":memory:") as con:
            con.execute("ATTACH ? AS demo_file (READ_ONLY)", [str(path)])
            found = con.sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_catalog = "
                f"'demo_file' AND table_schema = 'main' AND table_name = '{DATASET_TABLE}'"
            ).fetchall()
            if not found or not found[0][0]:
                return None
            rows = con.sql(
                f"SELECT kind, seed, scale, version, members FROM demo_file.main.{DATASET_TABLE}"
            ).fetchall()
    except duckdb.IOException as e:
        raise SourceUnreachableError(f"cannot open the demo file {path}: {e}") from e
    except duckdb.Error as e:
        raise TerminalStepError(f"cannot read the demo file {path}: {e}") from e
    if len(rows) != 1:
        return None
    kind, seed, scale, version, members = rows[0]
    # Stored relative to the file's folder, so a data folder moved as a whole stays a set.
    folder = _absolute(path).parent
    pairs = tuple((str(k), str(_absolute(folder / p))) for k, p in json.loads(members))
    return DemoFileInfo(str(kind), int(seed), float(scale), int(version), pairs)


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(Path(path).absolute()))


def ensure_demo_warehouse(path: Path, scale: float = 1.0) -> bool:
    """Create the demo warehouse at ``path`` unless it exists; whether it was created.

    Safe when several processes call it at once: an exclusive lock on ``<path>.lock``
    serialises them and the file is checked again once the lock is held. The file's data set
    is checked too (``check_demo_dataset``).
    """
    created = _ensure(Path(path), lambda target: write_demo_warehouse(target, scale))
    check_demo_dataset(Path(path))
    return created


def ensure_demo_crm(path: Path, scale: float = 1.0) -> bool:
    """Create the demo CRM at ``path`` unless it exists; whether it was created.

    Safe when several processes call it at once (see ``ensure_demo_warehouse``).
    """
    created = _ensure(Path(path), lambda target: write_demo_crm(target, scale))
    check_demo_dataset(Path(path))
    return created


# What this process already read, by (path, inode, mtime, size) of each file: data sets
# found complete, and each file's record of its generation.
_CHECKED: set[tuple[tuple[str, int, int, int], ...]] = set()
_INFOS: dict[tuple[tuple[str, int, int, int], ...], DemoFileInfo | None] = {}


def check_demo_dataset(path: Path) -> None:
    """Check that the demo file at ``path`` and the files generated with it agree.

    A partner that is missing (a ``demo init`` killed before it was moved into place) is
    generated now with the same seed and scale; one from another generation raises
    ``TerminalStepError`` naming both and the command that regenerates the set.
    """
    own = _stat_key([("", str(_absolute(path)))])
    if own not in _INFOS:
        try:
            _INFOS[own] = read_demo_info(path)
        except SourceUnreachableError:
            return  # opening it for the step fails the same way, and says so there
    info = _INFOS[own]
    if info is None or len(info.members) < 2:
        return  # generated alone, or by a version that did not record its data set
    key = _stat_key(info.members)
    if key in _CHECKED:
        return
    writers = {WAREHOUSE: write_demo_warehouse, CRM: write_demo_crm}
    for kind, member in info.members:
        other = Path(member)
        if other == _absolute(path):
            continue
        if not other.exists():
            dataset = [(k, Path(p)) for k, p in info.members]
            write = writers[kind]
            _ensure(
                other,
                lambda target, write=write: write(target, info.scale, info.seed, dataset=dataset),
            )
        partner = read_demo_info(other)
        if partner is None or partner.generation != info.generation:
            found = partner.describe() if partner else "no record of its generation"
            raise TerminalStepError(
                f"the demo data set is mixed: {path} holds {info.describe()}, but {other} "
                f"holds {found}",
                hint="an interrupted `playbook demo init` leaves this; regenerate the set with "
                f"`playbook demo init --force --scale {info.scale:g}`",
            )
    _CHECKED.add(_stat_key(info.members))


def _stat_key(members: Sequence[tuple[str, str]]) -> tuple[tuple[str, int, int, int], ...]:
    key: list[tuple[str, int, int, int]] = []
    for _, member in members:
        try:
            status = os.stat(member)
        except OSError:
            key.append((member, 0, 0, 0))
            continue
        key.append((member, status.st_ino, status.st_mtime_ns, status.st_size))
    return tuple(key)


def _members(
    kind: str, path: Path, dataset: Sequence[tuple[str, Path]]
) -> tuple[tuple[str, str], ...]:
    return _members_of([(kind, path), *dataset])


def _members_of(files: Sequence[tuple[str, Path]]) -> tuple[tuple[str, str], ...]:
    """The data set as (kind, absolute path), each file once, in a stable order."""
    unique = {str(_absolute(path)): kind for kind, path in files}
    for kind in unique.values():
        if kind not in {WAREHOUSE, CRM}:
            raise PlaybookValidationError(f"unknown demo file kind '{kind}'")
    return tuple(sorted((kind, path) for path, kind in unique.items()))


def _build_warehouse(
    target: Path, scale: float, seed: int, members: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    _check_scale(scale)
    _check_seed(seed)
    accounts = _generate_accounts(_scaled(ACCOUNTS_PER_SCALE, scale), seed)
    tables = {
        "accounts": accounts.table(),
        "product_usage": _generate_product_usage(accounts, seed),
        "support_tickets": _generate_support_tickets(accounts, seed),
    }
    info = DemoFileInfo(WAREHOUSE, seed, float(scale), DEMO_GENERATOR_VERSION, members)
    _build_file(target, WAREHOUSE_SCHEMA, WAREHOUSE_TABLES, tables, info)
    return {f"{WAREHOUSE_SCHEMA}.{name}": table.num_rows for name, table in tables.items()}


def _build_crm(
    target: Path, scale: float, seed: int, members: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    _check_scale(scale)
    _check_seed(seed)
    accounts = _generate_accounts(_scaled(ACCOUNTS_PER_SCALE, scale), seed)
    deals, deal_company = _generate_deals(accounts, _scaled(DEALS_PER_SCALE, scale), seed)
    contacts, contact_company = _generate_contacts(
        accounts, _scaled(CONTACTS_PER_SCALE, scale), seed
    )
    tables = {
        "companies": _generate_companies(accounts, seed),
        "deals": deals,
        "deal_company": deal_company,
        "contacts": contacts,
        "contact_company": contact_company,
    }
    info = DemoFileInfo(CRM, seed, float(scale), DEMO_GENERATOR_VERSION, members)
    _build_file(target, None, CRM_TABLES, tables, info)
    return {name: table.num_rows for name, table in tables.items()}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _ensure(path: Path, write: Callable[[Path], object]) -> bool:
    if path.exists():  # the file only ever appears complete (os.replace), so this is safe
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(_lock_path(path)):
        if path.exists():
            return False
        write(path)
        return True


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    """Where a file is built before it is moved to ``path`` (the same folder, so the move is
    an atomic rename); a leftover of an earlier build is removed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(f".tmp-{os.getpid()}")
    _discard(tmp)
    return tmp


def _discard(tmp: Path) -> None:
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _build_file(
    target: Path,
    schema: str | None,
    layouts: dict[str, tuple[tuple[str, str], ...]],
    tables: dict[str, pa.Table],
    info: DemoFileInfo,
) -> None:
    """Build a complete, closed DuckDB file at ``target`` with the tables and the record of
    how they were generated."""
    folder = _absolute(target).parent
    relative = [(kind, os.path.relpath(member, folder)) for kind, member in info.members]
    with duckdb.connect(str(target)) as con:
        if schema is not None:
            con.execute(f'CREATE SCHEMA "{schema}"')
        for name, table in tables.items():
            qualified = f'"{schema}"."{name}"' if schema else f'"{name}"'
            columns = ", ".join(f'"{col}" {sql_type}' for col, sql_type in layouts[name])
            # Names and types are the constants above, never user input.
            con.execute(f"CREATE TABLE {qualified} ({columns})")
            con.register("_demo_source", table)
            try:
                con.execute(f"INSERT INTO {qualified} SELECT * FROM _demo_source")
            finally:
                con.unregister("_demo_source")
        con.execute(
            f"CREATE TABLE main.{DATASET_TABLE} (kind VARCHAR, seed BIGINT, scale DOUBLE, "
            "version INTEGER, members VARCHAR)"
        )
        con.execute(
            f"INSERT INTO main.{DATASET_TABLE} VALUES (?, ?, ?, ?, ?)",
            [info.kind, info.seed, info.scale, info.version, json.dumps(relative)],
        )
        con.execute("CHECKPOINT")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_scale(scale: float) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise PlaybookValidationError(f"demo scale must be a finite number > 0, got {scale!r}")
    if scale <= 0:
        raise PlaybookValidationError(
            f"demo scale must be > 0, got {scale!r}", hint="use 0.1 for a small demo, 1 by default"
        )


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PlaybookValidationError(f"demo seed must be an integer >= 0, got {seed!r}")


def _scaled(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _compute(name: str, *args: object, options: object = None) -> pa.Array:
    """A pyarrow compute kernel by name (the generated ``pc.*`` wrappers are untyped)."""
    return pc.call_function(name, list(args), options)  # type: ignore[arg-type]


def _if_else(cond: pa.Array, left: object, right: object) -> pa.Array:
    return _compute("if_else", cond, left, right)


def _lower(values: pa.Array) -> pa.Array:
    return _compute("utf8_lower", values)


def _replace_regex(values: pa.Array, pattern: str, replacement: str) -> pa.Array:
    options = pc.ReplaceSubstringOptions(pattern, replacement)
    return _compute("replace_substring_regex", values, options=options)


def _join_with(*parts: object) -> pa.Array:
    return _compute("binary_join_element_wise", *parts)


def _dictionary_encode(values: pa.Array) -> pa.Array:
    return _compute("dictionary_encode", values)


def _labels(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Strings of ``labels`` picked by integer ``codes``."""
    return pa.array(list(labels), pa.string()).take(pa.array(codes.astype(np.int32)))


def _choice(rng: np.random.Generator, shares: Sequence[float], size: int) -> np.ndarray:
    """Category codes drawn with the given shares (one uniform draw per row)."""
    cumulative = np.cumsum(np.asarray(shares, dtype=np.float64))
    cumulative /= cumulative[-1]
    return np.searchsorted(cumulative, rng.random(size), side="right").astype(np.int8)


def _choice_by_row(
    rng: np.random.Generator, shares_by_group: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """Category codes where row i is drawn with ``shares_by_group[group[i]]``."""
    cumulative = np.cumsum(shares_by_group, axis=1)
    cumulative /= cumulative[:, -1:]
    u = rng.random(group.shape[0])
    return (u[:, None] >= cumulative[group]).sum(axis=1).astype(np.int8)


def _log_uniform(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    u = rng.random(low.shape[0])
    return np.exp(np.log(low) + u * (np.log(high) - np.log(low)))


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.date32())


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros.astype(np.int64), pa.timestamp("us"))


def _decimal(cents: np.ndarray, precision: int, mask: np.ndarray | None = None) -> pa.Array:
    """Exact ``DECIMAL(precision, 2)`` values from integer cents (no float rounding)."""
    cents = cents.astype(np.int64)
    words = np.empty((cents.shape[0], 2), dtype="<i8")
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)  # two's complement sign extension to 128 bits
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little").tobytes())
        null_count = int(mask.sum())
    return pa.Array.from_buffers(
        pa.decimal128(precision, 2),
        cents.shape[0],
        [validity, pa.py_buffer(words.tobytes())],
        null_count=null_count,
    )


def _occurrence(keys: pa.Array) -> np.ndarray:
    """For each row, how many earlier rows have the same key (0 for the first)."""
    encoded = _dictionary_encode(keys)
    assert isinstance(encoded, pa.DictionaryArray)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(indices, kind="stable")
    sorted_keys = indices[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_keys)) + 1]
    group_sizes = np.diff(np.r_[starts, sorted_keys.shape[0]])
    rank_sorted = np.arange(sorted_keys.shape[0]) - np.repeat(starts, group_sizes)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def _with_number(base: pa.Array, number: np.ndarray, separator: str) -> pa.Array:
    """``base`` + separator + number where number > 1, else ``base`` unchanged."""
    numbered = _join_with(base, pc.cast(pa.array(number.astype(np.int64)), pa.string()), separator)
    return _if_else(pa.array(number > 1), numbered, base)


def _join(*parts: pa.Array | str) -> pa.Array:
    return _join_with(*parts, "")


# ---------------------------------------------------------------------------------------------
# Accounts (shared by both files)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accounts:
    account_id: np.ndarray
    name: pa.Array
    segment: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    employees: np.ndarray
    health_score: np.ndarray
    health: np.ndarray
    arr_cents: np.ndarray
    owner: np.ndarray
    renewal_day: np.ndarray
    created_day: np.ndarray
    plan: np.ndarray
    seats_purchased: np.ndarray
    seats_used: np.ndarray

    @property
    def size(self) -> int:
        return int(self.account_id.shape[0])

    def table(self) -> pa.Table:
        return pa.table(
            {
                "account_id": pa.array(self.account_id, pa.int64()),
                "account_name": self.name,
                "segment": _labels(SEGMENTS, self.segment),
                "industry": _labels(INDUSTRIES, self.industry),
                "region": _labels(REGIONS, self.region),
                "employees": pa.array(self.employees, pa.int32()),
                "health_score": pa.array(self.health_score, pa.int32()),
                "health_status": _labels(HEALTH_STATUSES, self.health),
                "arr": _decimal(self.arr_cents, 12),
                "owner_email": _labels(CSM_EMAILS, self.owner),
                "renewal_date": _dates(self.renewal_day),
                "created_at": _dates(self.created_day),
                "plan": _labels(PLANS, self.plan),
                "seats_purchased": pa.array(self.seats_purchased, pa.int32()),
                "seats_used": pa.array(self.seats_used, pa.int32()),
            }
        )


def _company_names(rng: np.random.Generator, n: int) -> pa.Array:
    """Unique company names: word combinations drawn without replacement, numbered past that."""
    combos = pa.array(
        [
            f"{prefix} {noun} {suffix}".rstrip()
            for prefix in _NAME_PREFIXES
            for noun in _NAME_NOUNS
            for suffix in _NAME_SUFFIXES
        ],
        pa.string(),
    )
    total = len(combos)
    rounds = -(-n // total)
    picks = np.concatenate([rng.permutation(total) for _ in range(rounds)])[:n]
    copy_number = np.arange(n) // total + 1  # no base name ends with a digit, so " 2" is unique
    return _with_number(combos.take(pa.array(picks)), copy_number, " ")


def _generate_accounts(n: int, seed: int) -> _Accounts:
    rng = _rng(seed, _STREAM_ACCOUNTS)
    name = _company_names(rng, n)
    segment = _choice(rng, SEGMENT_SHARES, n)
    industry = rng.integers(0, len(INDUSTRIES), n).astype(np.int8)
    region = _choice(rng, (0.45, 0.30, 0.17, 0.08), n)

    employee_ranges = np.array([[1_000, 50_000], [200, 2_000], [5, 200]], dtype=np.float64)
    employees = np.floor(
        _log_uniform(rng, employee_ranges[segment, 0], employee_ranges[segment, 1])
    ).astype(np.int32)

    health = _choice(rng, HEALTH_SHARES, n)
    score_ranges = np.array(HEALTH_SCORE_RANGES, dtype=np.int32)
    low, high = score_ranges[health, 0], score_ranges[health, 1]
    health_score = (low + np.floor(rng.random(n) * (high - low + 1))).astype(np.int32)

    arr_ranges = np.array(ARR_RANGES, dtype=np.float64)
    arr_low, arr_high, arr_median = (arr_ranges[segment, i] for i in range(3))
    arr = np.exp(np.log(arr_median) + 0.6 * rng.standard_normal(n))
    fallback = _log_uniform(rng, arr_low, arr_high)
    arr = np.where((arr < arr_low) | (arr > arr_high), fallback, arr)
    arr_cents = np.clip(np.rint(arr * 100), arr_low * 100, arr_high * 100).astype(np.int64)

    owner = rng.integers(0, len(CSM_EMAILS), n).astype(np.int8)
    # Renewals spread over the 18 months around the reference date.
    renewal_day = (_REF_DAY + rng.integers(-270, 276, n)).astype(np.int32)
    created_day = (renewal_day - 365 * rng.integers(1, 7, n)).astype(np.int32)

    plan_shares = np.array([[0.05, 0.25, 0.70], [0.20, 0.65, 0.15], [0.75, 0.23, 0.02]])
    plan = _choice_by_row(rng, plan_shares, segment)

    seat_ranges = np.array([[150, 2_000], [30, 300], [3, 40]], dtype=np.float64)
    seats_purchased = np.floor(
        _log_uniform(rng, seat_ranges[segment, 0], seat_ranges[segment, 1])
    ).astype(np.int32)
    seats_purchased = np.maximum(np.minimum(seats_purchased, employees), 1).astype(np.int32)
    utilisation_ranges = np.array([[0.70, 1.00], [0.55, 0.90], [0.25, 0.60], [0.00, 0.25]])
    util_low, util_high = utilisation_ranges[health, 0], utilisation_ranges[health, 1]
    utilisation = util_low + rng.random(n) * (util_high - util_low)
    # Expansion candidates: healthy or neutral accounts using (nearly) all their seats.
    expansion = (health <= 1) & (rng.random(n) < 0.12)
    utilisation = np.where(expansion, 0.95 + rng.random(n) * 0.30, utilisation)
    seats_used = np.floor(seats_purchased * utilisation).astype(np.int32)

    return _Accounts(
        account_id=np.arange(1_000_001, 1_000_001 + n, dtype=np.int64),
        name=name,
        segment=segment,
        industry=industry,
        region=region,
        employees=employees,
        health_score=health_score,
        health=health,
        arr_cents=arr_cents,
        owner=owner,
        renewal_day=renewal_day,
        created_day=created_day,
        plan=plan,
        seats_purchased=seats_purchased,
        seats_used=seats_used,
    )


# ---------------------------------------------------------------------------------------------
# Warehouse tables
# ---------------------------------------------------------------------------------------------


def _generate_product_usage(accounts: _Accounts, seed: int) -> pa.Table:
    rng = _rng(seed, _STREAM_USAGE)
    n, months = accounts.size, len(USAGE_MONTHS)
    month_index = np.arange(months, dtype=np.float64)[None, :]
    # Monthly trend of active users per health status: at-risk and churned accounts decline.
    slope = np.array([0.02, 0.0, -0.09, -0.16])[accounts.health][:, None]
    base = accounts.seats_used * (0.60 + 0.35 * rng.random(n))
    noise = 1.0 + 0.03 * rng.standard_normal((n, months))
    active = np.floor(base[:, None] * np.maximum(1.0 + slope * month_index, 0.0) * noise)
    active = np.maximum(active, 0).astype(np.int32)
    logins = np.floor(active * (6.0 + 16.0 * rng.random((n, months)))).astype(np.int32)
    adoption_trend = np.array([0.5, 0.0, -1.5, -3.0])[accounts.health][:, None]
    adoption = (
        accounts.health_score[:, None] * 0.75
        + 10.0
        + adoption_trend * month_index
        + 6.0 * rng.standard_normal((n, months))
    )
    adoption = np.round(np.clip(adoption, 0.0, 100.0), 1)
    plan_factor = np.array([0.3, 1.0, 3.0])[accounts.plan][:, None]
    api_calls = np.floor(active * (20.0 + 380.0 * rng.random((n, months))) * plan_factor)
    month_days = np.array([(m - _EPOCH).days for m in USAGE_MONTHS], dtype=np.int32)
    return pa.table(
        {
            "account_id": pa.array(np.repeat(accounts.account_id, months), pa.int64()),
            "month": _dates(np.tile(month_days, n)),
            "active_users": pa.array(active.ravel(), pa.int32()),
            "logins": pa.array(logins.ravel(), pa.int32()),
            "feature_adoption_pct": pa.array(adoption.ravel(), pa.float64()),
            "api_calls": pa.array(api_calls.ravel().astype(np.int64), pa.int64()),
        }
    )


def _generate_support_tickets(accounts: _Accounts, seed: int) -> pa.Table:
    rng = _rng(seed, _STREAM_TICKETS)
    rate = (
        np.array([0.8, 1.5, 3.5, 2.0])[accounts.health]
        * np.array([2.0, 1.3, 0.8])[accounts.segment]
    )
    counts = rng.poisson(rate)
    account_index = np.repeat(np.arange(accounts.size), counts)
    total = int(account_index.shape[0])
    health = accounts.health[account_index]
    age = rng.integers(0, 365, total)
    priority_shares = np.array(
        [
            [0.45, 0.35, 0.15, 0.05],
            [0.35, 0.40, 0.18, 0.07],
            [0.15, 0.30, 0.33, 0.22],
            [0.20, 0.35, 0.30, 0.15],
        ]
    )
    priority = _choice_by_row(rng, priority_shares, health)
    status_shares = np.array([[0.50, 0.30, 0.20], [0.15, 0.15, 0.70], [0.02, 0.03, 0.95]])
    age_band = np.where(age < 14, 0, np.where(age < 60, 1, 2))
    status = _choice_by_row(rng, status_shares, age_band)
    csat_mean = np.array([4.4, 3.8, 2.8, 2.2])[health]
    csat = np.clip(np.rint(csat_mean + 0.8 * rng.standard_normal(total)), 1, 5).astype(np.int32)
    csat_missing = (status != 2) | (rng.random(total) >= 0.75)
    return pa.table(
        {
            "ticket_id": pa.array(np.arange(7_000_001, 7_000_001 + total), pa.int64()),
            "account_id": pa.array(accounts.account_id[account_index], pa.int64()),
            "opened_at": _dates(_REF_DAY - 1 - age),
            "priority": _labels(TICKET_PRIORITIES, priority),
            "status": _labels(TICKET_STATUSES, status),
            "csat": pa.array(csat, pa.int32(), mask=csat_missing),
        }
    )


# ---------------------------------------------------------------------------------------------
# CRM tables
# ---------------------------------------------------------------------------------------------


def _domains(names: pa.Array) -> pa.Array:
    compact = _replace_regex(_lower(names), r"[^a-z0-9]+", "")
    return _join(compact, ".com")


def _generate_companies(accounts: _Accounts, seed: int) -> pa.Table:
    rng = _rng(seed, _STREAM_COMPANIES)
    n = accounts.size
    revenue_dollars = np.rint(accounts.employees * (120_000 + 180_000 * rng.random(n)))
    revenue_missing = rng.random(n) < 0.07
    lifecycle = np.where(accounts.health_score >= 98, "evangelist", "customer")
    created_us = (
        accounts.created_day.astype(np.int64) * _US_PER_DAY
        + rng.integers(0, 86_400, n) * _US_PER_SECOND
    )
    ref_us = _REF_DAY * _US_PER_DAY
    modified_us = created_us + np.floor(rng.random(n) * (ref_us - created_us)).astype(np.int64)
    return pa.table(
        {
            "hs_object_id": pa.array(accounts.account_id, pa.int64()),
            "name": accounts.name,
            "domain": _domains(accounts.name),
            "industry": _labels(INDUSTRIES, accounts.industry),
            "annualrevenue": _decimal(revenue_dollars.astype(np.int64) * 100, 18, revenue_missing),
            "numberofemployees": pa.array(accounts.employees, pa.int32()),
            "lifecyclestage": pa.array(lifecycle, pa.string()),
            "createdate": _timestamps(created_us),
            "hs_lastmodifieddate": _timestamps(modified_us),
            "hubspot_owner_id": pa.array(
                np.array(CSM_OWNER_IDS, dtype=np.int64)[accounts.owner], pa.int64()
            ),
        }
    )


def _generate_deals(accounts: _Accounts, n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = _rng(seed, _STREAM_DEALS)
    size = accounts.size
    kind = _choice(rng, (0.45, 0.35, 0.20), n)  # new business, renewal, expansion
    is_renewal, is_expansion = kind == 1, kind == 2

    # Renewals cluster on accounts renewing in the next six months of the reference date;
    # expansions on accounts using (nearly) all their seats.
    renewing = np.flatnonzero(
        (accounts.renewal_day >= _REF_DAY) & (accounts.renewal_day < _REF_DAY + 182)
    )
    saturated = np.flatnonzero(accounts.seats_used >= 0.9 * accounts.seats_purchased)
    any_account = rng.integers(0, size, n)
    from_renewing = renewing[rng.integers(0, renewing.size, n)] if renewing.size else any_account
    from_saturated = (
        saturated[rng.integers(0, saturated.size, n)] if saturated.size else any_account
    )
    pick = rng.random(n)
    company = np.where(is_renewal & (pick < 0.5), from_renewing, any_account)
    company = np.where(is_expansion & (pick < 0.7), from_saturated, company)

    offset = np.where(
        is_renewal,
        accounts.renewal_day[company] - _REF_DAY + rng.integers(-10, 11, n),
        np.where(is_expansion, rng.integers(-360, 180, n), rng.integers(-420, 180, n)),
    )
    closedate = (_REF_DAY + offset).astype(np.int32)
    # An account has one current renewal deal: its others are earlier yearly cycles, closed.
    renewals = np.flatnonzero(is_renewal)
    _, first = np.unique(company[renewals], return_index=True)
    earlier_cycle = np.zeros(n, dtype=bool)
    earlier_cycle[renewals] = True
    earlier_cycle[renewals[first]] = False
    closedate = np.where(earlier_cycle, closedate - 365, closedate).astype(np.int32)
    future = closedate >= _REF_DAY

    health = accounts.health[company]
    open_stage = _choice(rng, (0.20, 0.25, 0.20, 0.20, 0.15), n)
    win_rate = np.where(
        is_renewal,
        np.array([0.92, 0.85, 0.60, 0.05])[health],
        np.where(is_expansion, 0.55, 0.30),
    )
    won = rng.random(n) < win_rate
    closed_stage = np.where(won, 5, 6).astype(np.int8)
    still_open = np.where(future, rng.random(n) < 0.85, rng.random(n) < 0.04) & ~earlier_cycle
    stage = np.where(still_open, open_stage, closed_stage).astype(np.int8)

    arr = accounts.arr_cents[company].astype(np.float64)
    new_ranges = np.array([[50_000, 600_000], [10_000, 120_000], [1_500, 25_000]], np.float64)
    segment = accounts.segment[company]
    new_amount = _log_uniform(rng, new_ranges[segment, 0], new_ranges[segment, 1]) * 100
    amount_factor = rng.random(n)
    amount_cents = np.where(
        is_renewal,
        arr * (0.90 + 0.25 * amount_factor),
        np.where(is_expansion, arr * (0.10 + 0.35 * amount_factor), new_amount),
    )
    amount_cents = np.rint(amount_cents).astype(np.int64)
    amount_missing = (stage == 0) & (rng.random(n) < 0.15)

    csm_owner = np.array(CSM_OWNER_IDS, dtype=np.int64)[accounts.owner[company]]
    ae_owner = np.array(AE_OWNER_IDS, dtype=np.int64)[rng.integers(0, len(AE_OWNER_IDS), n)]
    owner = np.where(kind == 0, ae_owner, csm_owner)

    # Deals are created before they close and never after the reference date.
    created_day = np.minimum(
        closedate.astype(np.int64) - rng.integers(14, 200, n), _REF_DAY - rng.integers(1, 120, n)
    )
    created_us = created_day * _US_PER_DAY
    created_us += rng.integers(0, 86_400, n) * _US_PER_SECOND
    end_us = np.minimum((closedate.astype(np.int64) + 1) * _US_PER_DAY, _REF_DAY * _US_PER_DAY)
    span = np.maximum(end_us - created_us, 0)
    modified_us = created_us + np.floor(rng.random(n) * span).astype(np.int64)

    deal_id = np.arange(9_000_000_001, 9_000_000_001 + n, dtype=np.int64)
    company_id = accounts.account_id[company]
    dealname = _join(
        accounts.name.take(pa.array(company)), " - ", _labels(DEAL_KINDS, kind), " 2026"
    )
    deals = pa.table(
        {
            "hs_object_id": pa.array(deal_id, pa.int64()),
            "dealname": dealname,
            "amount": _decimal(amount_cents, 12, amount_missing),
            "closedate": _dates(closedate),
            "dealstage": _labels(DEAL_STAGES, stage),
            "pipeline": pa.array(np.full(n, "default", dtype=object), pa.string()),
            "dealtype": _labels(DEAL_TYPES, kind),
            "hs_is_closed": pa.array(stage >= 5, pa.bool_()),
            "hubspot_owner_id": pa.array(owner, pa.int64()),
            "createdate": _timestamps(created_us),
            "hs_lastmodifieddate": _timestamps(modified_us),
        }
    )
    deal_company = pa.table(
        {"deal_id": pa.array(deal_id, pa.int64()), "company_id": pa.array(company_id, pa.int64())}
    )
    return deals, deal_company


def _generate_contacts(accounts: _Accounts, n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = _rng(seed, _STREAM_CONTACTS)
    # Bigger companies have more contacts.
    weight = np.log1p(accounts.employees.astype(np.float64))
    cumulative = np.cumsum(weight)
    company = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    company = np.minimum(company, accounts.size - 1)
    has_company = rng.random(n) >= 0.05

    first = rng.integers(0, len(_FIRST_NAMES), n)
    last = rng.integers(0, len(_LAST_NAMES), n)
    firstname = _labels(_FIRST_NAMES, first)
    lastname = _labels(_LAST_NAMES, last)
    company_domain = _domains(accounts.name).take(pa.array(company))
    free_domain = _labels(_FREE_EMAIL_DOMAINS, rng.integers(0, len(_FREE_EMAIL_DOMAINS), n))
    domain = _if_else(pa.array(has_company), company_domain, free_domain)
    local = _join(_lower(firstname), ".", _lower(lastname))
    # Names hold no digits, so "jane.doe2@..." never collides with a first occurrence.
    number = _occurrence(_join(local, "@", domain)) + 1
    email = _join(_with_number(local, number, ""), "@", domain)

    jobtitle_missing = rng.random(n) < 0.10
    jobtitle = _labels(_JOB_TITLES, rng.integers(0, len(_JOB_TITLES), n))
    stage = _choice(rng, (0.08, 0.12, 0.10, 0.08, 0.10, 0.45, 0.04, 0.03), n)
    lead_status = rng.integers(0, len(LEAD_STATUSES), n)
    lead_status_missing = (stage >= 5) | (rng.random(n) < 0.20)

    created_us = (_REF_DAY - rng.integers(1, 2_000, n)).astype(np.int64) * _US_PER_DAY
    created_us += rng.integers(0, 86_400, n) * _US_PER_SECOND
    ref_us = _REF_DAY * _US_PER_DAY
    modified_us = created_us + np.floor(rng.random(n) * (ref_us - created_us)).astype(np.int64)

    contact_id = np.arange(5_000_000_001, 5_000_000_001 + n, dtype=np.int64)
    contacts = pa.table(
        {
            "hs_object_id": pa.array(contact_id, pa.int64()),
            "email": email,
            "firstname": firstname,
            "lastname": lastname,
            "jobtitle": _if_else(
                pa.array(jobtitle_missing), pa.scalar(None, pa.string()), jobtitle
            ),
            "lifecyclestage": _labels(CONTACT_LIFECYCLE_STAGES, stage),
            "hs_lead_status": _if_else(
                pa.array(lead_status_missing),
                pa.scalar(None, pa.string()),
                _labels(LEAD_STATUSES, lead_status),
            ),
            "createdate": _timestamps(created_us),
            "lastmodifieddate": _timestamps(modified_us),
        }
    )
    contact_company = pa.table(
        {
            "contact_id": pa.array(contact_id[has_company], pa.int64()),
            "company_id": pa.array(accounts.account_id[company[has_company]], pa.int64()),
        }
    )
    return contacts, contact_company
