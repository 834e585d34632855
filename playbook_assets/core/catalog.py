"""Finding, loading and validating playbooks.

Built-in templates are read first, then the deployment's own playbooks (``playbooks/``
beside the config file); a deployment playbook with a built-in's id replaces it. A broken
playbook is kept aside with its error, so one bad file never hides the others.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from playbook_assets.core.catalog_cache import CatalogCache
from playbook_assets.core.config import ExecutorConfig
from playbook_assets.core.errors import (
    PlaybookError,
    PlaybookNotFoundError,
    PlaybookValidationError,
    SourceLocation,
    did_you_mean,
    unknown_name_hint,
)
from playbook_assets.core.graph import resolved_output_source
from playbook_assets.core.playbook_parsing import parse_playbook
from playbook_assets.core.spec import AssetTrigger, OutputSpec, PlaybookSpec
from playbook_assets.core.validation import RESERVED_ASSET_NAMES, validate_playbook
from playbook_assets.core.yaml_source import (
    YamlDocument,
    decoded_text,
    load_yaml,
    load_yaml_file,
    read_bounded,
)

__all__ = ["RESERVED_ASSET_NAMES", "BrokenPlaybook", "LoadedPlaybook", "PlaybookCatalog"]
BROKEN_ASSET_NAME = "invalid_playbook"
# The suffixes of a file of a playbook's tests, beside it: ``health_dashboard.tests.yaml``.
TESTS_SUFFIXES = (".tests.yaml", ".tests.yml")
# What Dagster refuses in a group name and in a part of an asset key.
_NOT_IN_ASSET_NAMES = re.compile(r"[^A-Za-z0-9_]")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedPlaybook:
    """A valid playbook with where it came from."""

    spec: PlaybookSpec
    path: Path
    document: YamlDocument
    origin: str  # "builtin" or "custom"
    sha256: str
    text: str = ""  # the file as it was loaded: run records keep a copy

    @property
    def id(self) -> str:
        """The playbook id."""
        return self.spec.id

    @property
    def display_path(self) -> str:
        """The file as shown in messages."""
        return self.document.path

    @functools.cached_property
    def resolved_path(self) -> str:
        """The file's absolute path, symbolic links resolved (code references in the UI)."""
        return str(self.path.resolve())

    def step_location(self, step_id: str) -> SourceLocation:
        """Where a step is defined."""
        return self.document.location(("playbook", "steps", self.spec.step_ids.index(step_id)))

    def output_location(self, name: str) -> SourceLocation:
        """Where an output is defined."""
        names = [output.name for output in self.spec.outputs]
        return self.document.location(("playbook", "outputs", names.index(name)))

    def output_source(self, output: OutputSpec) -> str:
        """The step an output reads (aggregate outputs default to the first data output's)."""
        return resolved_output_source(self.spec, output)


@dataclass(frozen=True)
class BrokenPlaybook:
    """A playbook file that failed to load, with its error."""

    path: Path
    display_path: str
    playbook_id: str | None
    error: PlaybookError
    # Its asset in the code location, unique among the catalog's (``name_broken_assets``).
    asset_key: tuple[str, str] = ("invalid", "invalid_playbook")


@dataclass
class PlaybookCatalog:
    """Every playbook found: the valid ones by id, and the broken ones."""

    playbooks: dict[str, LoadedPlaybook] = field(default_factory=dict)
    broken: list[BrokenPlaybook] = field(default_factory=list)
    replaced: dict[str, Path] = field(default_factory=dict)

    def get(self, playbook_id: str) -> LoadedPlaybook:
        """The playbook with this id; unknown ids list the valid ones and the closest match."""
        if playbook_id in self.playbooks:
            return self.playbooks[playbook_id]
        for broken in self.broken:
            if broken.playbook_id == playbook_id:
                raise broken.error
        valid = sorted(self.playbooks)
        suggestion = did_you_mean(playbook_id, valid)
        hint = f"valid ids: {', '.join(valid)}" if valid else "no playbook is defined"
        if suggestion:
            hint = f"{suggestion} ({hint})"
        raise PlaybookNotFoundError(f"unknown playbook '{playbook_id}'", hint=hint)


def display_path(path: Path, working_directory: Path | None = None) -> str:
    """A path relative to the working directory (resolved; computed here when not given)
    when it is inside it."""
    base = working_directory if working_directory is not None else Path.cwd().resolve()
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path)


def playbook_files(directories: Iterable[Path]) -> list[Path]:
    """YAML files in the given folders, sorted by name within each folder; a playbook's
    tests beside it (``*.tests.yaml``) are not playbooks."""
    files: list[Path] = []
    for directory in directories:
        if directory.is_dir():
            files.extend(sorted(p for p in directory.iterdir() if is_playbook_file(p)))
    return files


def is_playbook_file(path: Path) -> bool:
    """Whether a file of a playbooks folder is a playbook (YAML, and not a tests file)."""
    return path.suffix in {".yaml", ".yml"} and not path.name.endswith(TESTS_SUFFIXES)


def load_catalog(
    config: ExecutorConfig,
    template_dirs: Sequence[Path],
    extra_files: Sequence[Path] = (),
    *,
    use_cache: bool = False,
    only: Collection[str] | None = None,
) -> PlaybookCatalog:
    """Load built-in templates, then the deployment's playbooks (which replace built-ins).

    With ``use_cache``, playbooks that validated before with the same bytes, configuration
    and code are not parsed and checked again (``catalog_cache``); ``only`` as for
    ``load_catalog_files``.
    """
    custom = [*playbook_files([config.playbooks_dir]), *extra_files]
    builtin = playbook_files(template_dirs)
    return load_catalog_files(config, builtin, custom, use_cache=use_cache, only=only)


def load_catalog_files(
    config: ExecutorConfig,
    builtin: Sequence[Path],
    custom: Sequence[Path],
    *,
    use_cache: bool = False,
    only: Collection[str] | None = None,
) -> PlaybookCatalog:
    """Load the ``builtin`` playbook files, then the ``custom`` ones (which replace
    built-ins of the same id); ``use_cache`` as for ``load_catalog``.

    With ``only`` (and the cache), a file the cache holds validated as a playbook whose id is
    not in ``only`` is skipped, and the cache is left as it was: for a process that runs those
    playbooks alone. Every other file loads as without it, so the playbooks of those ids, and
    any file that changed or is broken, come out as a full load gives them.
    """
    catalog = PlaybookCatalog()
    cache = CatalogCache.open(config) if use_cache else None
    sources = [(p, "builtin") for p in builtin] + [(p, "custom") for p in custom]
    working_directory = Path.cwd().resolve()
    for path, origin in sources:
        if only is not None and cache is not None:
            if _cached_as_other(path, config, origin, cache, working_directory, only):
                continue
        try:
            loaded = load_playbook_file(
                path, config, origin, cache=cache, working_directory=working_directory
            )
        except PlaybookError as e:
            catalog.broken.append(
                BrokenPlaybook(path, display_path(path), _guess_id(path, config), e)
            )
            continue
        except Exception as e:  # a fault in one file's checks must not hide the others
            logger.exception("unexpected error while loading %s", path)
            error = PlaybookValidationError(
                f"unexpected error while loading the playbook: {type(e).__name__}: {e}",
                location=SourceLocation(display_path(path)),
                hint="this is a fault of the product, not of the file: please report it",
            )
            catalog.broken.append(BrokenPlaybook(path, display_path(path), path.stem, error))
            continue
        previous = catalog.playbooks.get(loaded.id)
        if previous is not None:
            if previous.origin == "builtin" and origin == "custom":
                catalog.replaced[loaded.id] = previous.path
            else:
                error = PlaybookValidationError(
                    f"playbook id '{loaded.id}' is already defined in {previous.display_path}",
                    location=loaded.document.location(("playbook", "id")),
                    hint="give each playbook a unique id",
                )
                catalog.broken.append(BrokenPlaybook(path, loaded.display_path, loaded.id, error))
                continue
        catalog.playbooks[loaded.id] = loaded
    check_asset_triggers(catalog)
    catalog.broken = name_broken_assets(catalog)
    if cache is not None and only is None:
        cache.save()
    return catalog


def _cached_as_other(
    path: Path,
    config: ExecutorConfig,
    origin: str,
    cache: CatalogCache,
    working_directory: Path,
    only: Collection[str],
) -> bool:
    """Whether the cache holds ``path``, as it is now, validated as a playbook whose id is
    not in ``only``; on any doubt, False (the file is loaded)."""
    shown = display_path(path, working_directory)
    try:
        raw = read_bounded(path, shown, config.limits.yaml_limits().max_file_bytes)
    except PlaybookError:
        return False
    stored_id = cache.stored_playbook_id(cache.key(raw, shown, origin))
    return stored_id is not None and stored_id not in only


def name_broken_assets(catalog: PlaybookCatalog) -> list[BrokenPlaybook]:
    """The broken playbooks, each with an asset key of its own.

    The key is ``[id, invalid_playbook]`` (the file's name when the id is unknown or not a
    valid name); a second broken file with the same id, or an id whose valid playbook has an
    asset of that name, gets ``invalid_playbook_2``, ``_3``, ...: two broken files never
    collide, whatever their ids.
    """
    taken = {
        (loaded.id, name)
        for loaded in catalog.playbooks.values()
        for name in [*loaded.spec.step_ids, *(o.name for o in loaded.spec.outputs), "run_report"]
    }
    named: list[BrokenPlaybook] = []
    for broken in catalog.broken:
        prefix = _asset_name(broken.playbook_id) or _asset_name(broken.path.stem) or "invalid"
        name = BROKEN_ASSET_NAME
        number = 1
        while (prefix, name) in taken:
            number += 1
            name = f"{BROKEN_ASSET_NAME}_{number}"
        taken.add((prefix, name))
        named.append(replace(broken, asset_key=(prefix, name)))
    return named


def _asset_name(text: str | None) -> str | None:
    """``text`` as one part of an asset key and a group name, if it can be one."""
    return _NOT_IN_ASSET_NAMES.sub("_", text) if text else None


def load_playbook_file(
    path: Path,
    config: ExecutorConfig,
    origin: str = "custom",
    *,
    cache: CatalogCache | None = None,
    working_directory: Path | None = None,
) -> LoadedPlaybook:
    """Load, parse and validate one playbook file (unless ``cache`` holds it validated); it is
    shown relative to ``working_directory`` (default: the current one)."""
    shown = display_path(path, working_directory)
    raw = read_bounded(path, shown, config.limits.yaml_limits().max_file_bytes)
    return load_playbook_bytes(raw, path, config, origin, shown=shown, cache=cache)


def load_playbook_bytes(
    raw: bytes,
    path: Path,
    config: ExecutorConfig,
    origin: str = "custom",
    *,
    shown: str,
    cache: CatalogCache | None = None,
) -> LoadedPlaybook:
    """Parse and validate a playbook's bytes as if read from ``path`` (errors name ``shown``:
    the file, or where the text came from; ``load_yaml`` bounds its size)."""
    limits = config.limits.yaml_limits()
    text = decoded_text(raw, shown)
    key = cache.key(raw, shown, origin) if cache is not None else ""
    cached = cache.document(key, shown) if cache is not None else None
    document = cached if cached is not None else load_yaml(text, shown, limits)
    spec = parse_playbook(document)
    loaded = LoadedPlaybook(
        spec=spec,
        path=path,
        document=document,
        origin=origin,
        sha256=hashlib.sha256(raw).hexdigest(),
        text=text,
    )
    if cached is None:
        validate_playbook(loaded, config)
        if cache is not None:
            cache.add(key, document)
    return loaded


def _guess_id(path: Path, config: ExecutorConfig) -> str | None:
    try:
        document = load_yaml_file(path, limits=config.limits.yaml_limits())
    except PlaybookError:
        return path.stem
    data = document.data
    if isinstance(data, dict) and isinstance(data.get("playbook"), dict):
        playbook_id = data["playbook"].get("id")
        if isinstance(playbook_id, str):
            return playbook_id
    return path.stem


def check_asset_triggers(catalog: PlaybookCatalog) -> None:
    """Asset triggers must name a step or output of a loaded playbook; a playbook whose
    trigger does not is moved to the broken ones."""
    known = {
        f"{loaded.id}/{name}"
        for loaded in catalog.playbooks.values()
        for name in [*loaded.spec.step_ids, *(o.name for o in loaded.spec.outputs)]
    }
    for playbook_id, loaded in list(catalog.playbooks.items()):
        for index, trigger in enumerate(loaded.spec.triggers):
            if isinstance(trigger, AssetTrigger) and trigger.asset not in known:
                error = PlaybookValidationError(
                    f"the asset trigger names unknown asset '{trigger.asset}'",
                    location=loaded.document.location(("playbook", "triggers", index)),
                    field="triggers.asset",
                    hint=unknown_name_hint(trigger.asset, known, "asset"),
                )
                del catalog.playbooks[playbook_id]
                catalog.broken.append(
                    BrokenPlaybook(loaded.path, loaded.display_path, playbook_id, error)
                )
                break
