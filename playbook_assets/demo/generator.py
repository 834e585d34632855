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

This module generates and checks the data set; the tables come from ``accounts``,
``warehouse_tables`` and ``crm_tables`` (built from ``vocabulary`` and ``arrays``), and
``files`` builds each file and reads its record.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

from playbook_assets.core.errors import (
    PlaybookValidationError,
    SourceUnreachableError,
    TerminalStepError,
)
from playbook_assets.demo.accounts import generate_accounts
from playbook_assets.demo.crm_tables import (
    CRM_TABLES,
    generate_companies,
    generate_contacts,
    generate_deals,
)
from playbook_assets.demo.files import (
    DemoFileInfo,
    absolute_path,
    build_file,
    discard,
    ensure_file,
    exclusive_lock,
    lock_file,
    read_demo_info,
    temporary_file,
)
from playbook_assets.demo.vocabulary import ACCOUNTS_PER_SCALE, CONTACTS_PER_SCALE, DEALS_PER_SCALE
from playbook_assets.demo.warehouse_tables import (
    WAREHOUSE_SCHEMA,
    WAREHOUSE_TABLES,
    generate_product_usage,
    generate_support_tickets,
)

DEMO_GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes, so files of different versions differ."""

WAREHOUSE = "warehouse"
CRM = "crm"


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
    tmp = temporary_file(path)
    try:
        counts = _build_warehouse(tmp, scale, seed, _members(WAREHOUSE, path, dataset))
        os.replace(tmp, path)
    finally:
        discard(tmp)
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
    tmp = temporary_file(path)
    try:
        counts = _build_crm(tmp, scale, seed, _members(CRM, path, dataset))
        os.replace(tmp, path)
    finally:
        discard(tmp)
    return counts


def write_demo_dataset(
    files: Sequence[tuple[str, Path]], scale: float = 1.0, seed: int = 42
) -> dict[Path, dict[str, int]]:
    """Generate a whole demo data set (``(kind, path)`` of each file) as one: every file is
    built under a temporary name first, and all are moved into place together while their
    locks are held, so a process killed while generating leaves the previous set whole.
    Returns each file's row counts."""
    members = _members_of(files)
    temporaries = {Path(path): temporary_file(Path(path)) for _, path in members}
    builders = {WAREHOUSE: _build_warehouse, CRM: _build_crm}
    with contextlib.ExitStack() as locks:
        for _, path in sorted(members, key=lambda member: member[1]):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            locks.enter_context(exclusive_lock(lock_file(Path(path))))
        try:
            counts = {
                Path(path): builders[kind](temporaries[Path(path)], scale, seed, members)
                for kind, path in members
            }
            for path, tmp in temporaries.items():
                os.replace(tmp, path)
        finally:
            for tmp in temporaries.values():
                discard(tmp)
    return {Path(path): counts[absolute_path(Path(path))] for _, path in files}


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


def ensure_demo_warehouse(path: Path, scale: float = 1.0) -> bool:
    """Create the demo warehouse at ``path`` unless it exists; whether it was created.

    Safe when several processes call it at once: an exclusive lock on ``<path>.lock``
    serialises them and the file is checked again once the lock is held. The file's data set
    is checked too (``check_demo_dataset``).
    """
    created = ensure_file(Path(path), lambda target: write_demo_warehouse(target, scale))
    check_demo_dataset(Path(path))
    return created


def ensure_demo_crm(path: Path, scale: float = 1.0) -> bool:
    """Create the demo CRM at ``path`` unless it exists; whether it was created.

    Safe when several processes call it at once (see ``ensure_demo_warehouse``).
    """
    created = ensure_file(Path(path), lambda target: write_demo_crm(target, scale))
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
    own = _stat_key([("", str(absolute_path(path)))])
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
        if other == absolute_path(path):
            continue
        if not other.exists():
            dataset = [(k, Path(p)) for k, p in info.members]
            write = writers[kind]
            ensure_file(
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
    unique = {str(absolute_path(path)): kind for kind, path in files}
    for kind in unique.values():
        if kind not in {WAREHOUSE, CRM}:
            raise PlaybookValidationError(f"unknown demo file kind '{kind}'")
    return tuple(sorted((kind, path) for path, kind in unique.items()))


def _build_warehouse(
    target: Path, scale: float, seed: int, members: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    _check_scale(scale)
    _check_seed(seed)
    accounts = generate_accounts(_scaled(ACCOUNTS_PER_SCALE, scale), seed)
    tables = {
        "accounts": accounts.table(),
        "product_usage": generate_product_usage(accounts, seed),
        "support_tickets": generate_support_tickets(accounts, seed),
    }
    info = DemoFileInfo(WAREHOUSE, seed, float(scale), DEMO_GENERATOR_VERSION, members)
    build_file(target, WAREHOUSE_SCHEMA, WAREHOUSE_TABLES, tables, info)
    return {f"{WAREHOUSE_SCHEMA}.{name}": table.num_rows for name, table in tables.items()}


def _build_crm(
    target: Path, scale: float, seed: int, members: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    _check_scale(scale)
    _check_seed(seed)
    accounts = generate_accounts(_scaled(ACCOUNTS_PER_SCALE, scale), seed)
    deals, deal_company = generate_deals(accounts, _scaled(DEALS_PER_SCALE, scale), seed)
    contacts, contact_company = generate_contacts(
        accounts, _scaled(CONTACTS_PER_SCALE, scale), seed
    )
    tables = {
        "companies": generate_companies(accounts, seed),
        "deals": deals,
        "deal_company": deal_company,
        "contacts": contacts,
        "contact_company": contact_company,
    }
    info = DemoFileInfo(CRM, seed, float(scale), DEMO_GENERATOR_VERSION, members)
    build_file(target, None, CRM_TABLES, tables, info)
    return {name: table.num_rows for name, table in tables.items()}


# ---------------------------------------------------------------------------------------------
# Files
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
