"""Benchmark 1: code location load with N generated playbooks of 4 steps.

What is timed: a fresh Python process that imports the code, builds the ``Definitions``
(``playbook_assets.dagster_adapter.code_location.build_code_location``), resolves the
repository (asset graph and every job) and serializes the full repository snapshot
(``RepositorySnap.from_def``, with the job snapshots, then ``serialize_value``): the work a
code server does before the UI can
show the location. The wall time of the whole process is the figure; the phases are reported
as notes. Baselines in the same run: a naive factory (one ``@asset`` per step and one asset
job per playbook, reading the same YAML files) and the floor (Dagster and one trivial asset,
snapshot included).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    Options,
    Row,
    median,
    run_child,
    write_config,
    write_result,
)

SIZES = (6, 100, 1000)
# At 1000 playbooks, against Dagster loading as many bare ``AssetSpec``s as the product has
# assets (4 steps, an output and the run report per playbook).
TARGET_RATIO_AT_1000 = 1.5
ASSETS_PER_PLAYBOOK = 6

PLAYBOOK = """\
playbook:
  id: {pid}
  name: Generated playbook {n}
  description: Healthy accounts by segment (generated for the load benchmark).
  version: "1.0"
  parameters:
    - name: min_arr
      type: number
      default: {min_arr}
  steps:
    - id: accounts
      name: Accounts
      source: data_warehouse
      type: query
      config:
        template: |
          SELECT account_id, segment, arr, health_score
          FROM analytics.accounts
          WHERE arr >= {{{{min_arr}}}}
    - id: healthy
      name: Healthy accounts
      source: transform
      type: filter
      config:
        input: "${{steps.accounts}}"
        condition: "health_score >= 50"
    - id: by_segment
      name: ARR by segment
      source: transform
      type: aggregate
      config:
        input: "${{steps.healthy}}"
        group_by: [segment]
        metrics:
          - name: accounts
            expression: "COUNT(*)"
          - name: total_arr
            expression: "SUM(arr)"
    - id: large_segments
      name: Large segments
      source: transform
      type: filter
      config:
        input: "${{steps.by_segment}}"
        condition: "accounts > 10"
  outputs:
    - name: segments
      source: "${{steps.large_segments}}"
"""


def generate_playbooks(folder: Path, count: int) -> None:
    """Write ``count`` generated 4-step playbooks into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        pid = f"generated_{n:04d}"
        text = PLAYBOOK.format(pid=pid, n=n, min_arr=1000 + n)
        (folder / f"{pid}.yaml").write_text(text)


# ---------------------------------------------------------------------------------------------
# Workers (run in a fresh process: python -m bench.load MODE CONFIG)
# ---------------------------------------------------------------------------------------------


def _snapshot(defs: Any, phases: dict[str, float], started: float) -> None:
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    repo = defs.get_repository_def()
    jobs = repo.get_all_jobs()
    _ = repo.asset_graph  # resolving it is part of the load
    phases["resolve_jobs"] = time.perf_counter() - started - sum(phases.values())
    snapshot = RepositorySnap.from_def(repo)
    phases["snapshot"] = time.perf_counter() - started - sum(phases.values())
    data = serialize_value(snapshot)
    phases["serialize"] = time.perf_counter() - started - sum(phases.values())
    phases["jobs"] = len(jobs)
    phases["snapshot_mib"] = len(data) / 2**20


def _worker_product(config_path: str, started: float) -> dict[str, float]:
    phases: dict[str, float] = {}
    import dagster  # noqa: F401

    from playbook_assets.dagster_adapter.code_location import build_code_location

    phases["import"] = time.perf_counter() - started
    defs = build_code_location([], config_path=config_path, strict=True)
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    _snapshot(defs, phases, started)
    return phases


def _worker_naive(config_path: str, started: float) -> dict[str, float]:
    phases: dict[str, float] = {}
    import dagster as dg
    import yaml

    phases["import"] = time.perf_counter() - started
    folder = Path(config_path).parent / "playbooks"
    assets: list[Any] = []
    jobs: list[Any] = []
    for path in sorted(folder.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())["playbook"]
        previous: str | None = None
        for step in spec["steps"]:
            assets.append(_naive_asset(dg, spec["id"], step["id"], previous))
            previous = step["id"]
        jobs.append(
            dg.define_asset_job(name=spec["id"], selection=dg.AssetSelection.groups(spec["id"]))
        )
    defs = dg.Definitions(assets=assets, jobs=jobs)
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    _snapshot(defs, phases, started)
    return phases


def _naive_asset(dg: Any, group: str, name: str, upstream: str | None) -> Any:
    ins = {"upstream": dg.AssetIn(key=[group, upstream])} if upstream else {}

    @dg.asset(key=[group, name], group_name=group, ins=ins)
    def compute(**inputs: Any) -> None:
        return None

    return compute


def _worker_bare(config_path: str, started: float) -> dict[str, float]:
    """Dagster alone, same asset graph: per playbook one subsettable multi-asset of bare
    specs (4 chained steps, an output, a report), no config, metadata or resources."""
    phases: dict[str, float] = {}
    import dagster as dg

    phases["import"] = time.perf_counter() - started
    count = len(list((Path(config_path).parent / "playbooks").glob("*.yaml")))
    names = ["accounts", "healthy", "by_segment", "large_segments", "segments", "run_report"]
    assets: list[Any] = []
    for n in range(count):
        group = f"generated_{n:04d}"
        specs = [
            dg.AssetSpec(
                [group, name],
                deps=[[group, names[index - 1]]] if index else [],
                group_name=group,
                skippable=True,
            )
            for index, name in enumerate(names)
        ]

        @dg.multi_asset(name=group, specs=specs, can_subset=True)
        def compute(context):  # type: ignore[no-untyped-def]
            return None

        assets.append(compute)
    defs = dg.Definitions(assets=assets)
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    _snapshot(defs, phases, started)
    return phases


def _worker_specs(config_path: str, started: float) -> dict[str, float]:
    """Dagster alone loading as many bare ``AssetSpec``s as the product has assets."""
    phases: dict[str, float] = {}
    import dagster as dg

    phases["import"] = time.perf_counter() - started
    count = len(list((Path(config_path).parent / "playbooks").glob("*.yaml")))
    specs = [
        dg.AssetSpec([f"generated_{n:04d}", f"asset_{index}"])
        for n in range(count)
        for index in range(ASSETS_PER_PLAYBOOK)
    ]
    defs = dg.Definitions(assets=specs)
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    _snapshot(defs, phases, started)
    return phases


def _worker_floor(started: float) -> dict[str, float]:
    phases: dict[str, float] = {}
    import dagster as dg

    phases["import"] = time.perf_counter() - started

    @dg.asset
    def trivial() -> int:
        return 1

    defs = dg.Definitions(assets=[trivial])
    phases["build"] = time.perf_counter() - started - sum(phases.values())
    _snapshot(defs, phases, started)
    return phases


def _worker_main(argv: list[str]) -> None:
    started = time.perf_counter()
    mode = argv[0]
    if mode == "product":
        phases = _worker_product(argv[1], started)
    elif mode == "naive":
        phases = _worker_naive(argv[1], started)
    elif mode == "bare":
        phases = _worker_bare(argv[1], started)
    elif mode == "specs":
        phases = _worker_specs(argv[1], started)
    else:
        phases = _worker_floor(started)
    write_result(phases)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _phase_note(results: list[dict[str, float]]) -> str:
    keys = ("import", "build", "resolve_jobs", "snapshot", "serialize")
    parts = [f"{key} {median([r[key] for r in results]):.2f}" for key in keys]
    return "phases s: " + ", ".join(parts)


def _unserialized(results: list[Any]) -> float:
    """Process time minus the serialization phase (what ``definitions validate`` does)."""
    return median([r.seconds - r.output["serialize"] for r in results])


def run(options: Options) -> list[Row]:
    """Rows for sizes 6, 100 and 1000 (product, naive) plus the floor."""
    rows: list[Row] = []
    floor_runs = [
        run_child([PYTHON, "-m", "bench.load", "floor"]) for _ in range(options.repeats(5, 3))
    ]
    floor = median([r.seconds for r in floor_runs])
    rows.append(
        Row(
            "code location load",
            "floor: dagster + 1 trivial asset",
            floor,
            "-",
            None,
            "-",
            None,
            max(r.peak_mib for r in floor_runs),
            len(floor_runs),
            _phase_note([r.output for r in floor_runs]),
        )
    )
    per_playbook: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for size in SIZES:
            folder = Path(tmp) / f"n{size}"
            # Loading never opens the data: the connection paths need not exist.
            config = write_config(folder, folder / "no-data")
            generate_playbooks(folder / "playbooks", size)
            repeats = options.repeats(5, 1 if size >= 1000 else 3)
            product, naive, bare, specs = [], [], [], []
            # Untimed: a deployment that loaded once has its validated playbooks cached.
            run_child([PYTHON, "-m", "bench.load", "product", str(config)])
            for _ in range(repeats):  # interleaved, so drifting machine load hits all
                product.append(run_child([PYTHON, "-m", "bench.load", "product", str(config)]))
                naive.append(run_child([PYTHON, "-m", "bench.load", "naive", str(config)]))
                bare.append(run_child([PYTHON, "-m", "bench.load", "bare", str(config)]))
                if size == 1000:
                    specs.append(run_child([PYTHON, "-m", "bench.load", "specs", str(config)]))
            seconds = median([r.seconds for r in product])
            naive_seconds = median([r.seconds for r in naive])
            per_playbook[size] = (seconds - floor) / size
            naive_per = (naive_seconds - floor) / size
            snapshot_mib = median([r.output["snapshot_mib"] for r in product])
            if size == 1000:
                specs_seconds = median([r.seconds for r in specs])
                rows.append(
                    Row(
                        "code location load",
                        f"{size} playbooks x 4 steps (product, cached catalog)",
                        seconds,
                        f"Dagster alone, {size * ASSETS_PER_PLAYBOOK} bare AssetSpecs",
                        specs_seconds,
                        f"<= {TARGET_RATIO_AT_1000:g}x",
                        seconds <= TARGET_RATIO_AT_1000 * specs_seconds,
                        max(r.peak_mib for r in product),
                        repeats,
                        "product: "
                        + _phase_note([r.output for r in product])
                        + "; specs: "
                        + _phase_note([r.output for r in specs]),
                    )
                )
            rows.append(
                Row(
                    "code location load",
                    f"{size} playbooks x 4 steps (product)",
                    seconds,
                    "naive factory",
                    naive_seconds,
                    "per-playbook flat",
                    None,
                    max(r.peak_mib for r in product),
                    repeats,
                    f"{per_playbook[size] * 1000:.1f} ms/playbook above floor "
                    f"(naive {naive_per * 1000:.1f}); snapshot {snapshot_mib:.1f} MiB; "
                    f"without serializing it {_unserialized(product):.2f} s; "
                    + _phase_note([r.output for r in product]),
                )
            )
            bare_seconds = median([r.seconds for r in bare])
            rows.append(
                Row(
                    "code location load",
                    f"{size} playbooks: Dagster alone, same asset graph",
                    bare_seconds,
                    "product",
                    seconds,
                    "-",
                    None,
                    max(r.peak_mib for r in bare),
                    repeats,
                    f"bare multi-asset specs, no playbook parsing; without serializing "
                    f"{_unserialized(bare):.2f} s; " + _phase_note([r.output for r in bare]),
                )
            )
    # Flatness: per-playbook cost at 1000 vs at 100 (6 is dominated by the floor).
    growth = per_playbook[1000] / per_playbook[100] if per_playbook[100] > 0 else None
    rows.append(
        Row(
            "code location load",
            "per-playbook cost 1000 vs 100",
            None,
            "-",
            None,
            "<= 1.25x (flat)",
            growth is not None and growth <= 1.25,
            None,
            0,
            f"{per_playbook[100] * 1000:.1f} -> {per_playbook[1000] * 1000:.1f} ms/playbook"
            + (f" ({growth:.2f}x)" if growth is not None else ""),
            ratio=growth,
        )
    )
    return rows


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
