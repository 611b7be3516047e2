"""B2 linkage: Baoxue's record linkage vs Splink (DuckDB backend) on the same generated noisy feeds.

Data: a generated district (``baoxue.synth``) of about N children; the records are every row of the
eight department feeds (four departments × two periods) with its clerical noise (missing and mistyped
ID numbers, homophone names, wrong birth dates, abbreviated addresses ...); the truth file says which
person each row describes.

- Baoxue: the registry's own rules, in memory — rows with a valid ID number (GB 11643, normalised)
  group by it; every other row is scored against the others by :mod:`registry.linkage.scoring`
  (blocking on name pinyin + sex and on birth date with the name's first character or syllable) and
  joins its best match only on an automatic link (review candidates count as *not* linked here).
- Splink 5 (DuckDB): the same prepared columns (normalised valid ID, name, pinyin, birth date, sex,
  hukou village and town, guardian), blocking on the ID number and on each pair of birth date, name
  pinyin and hukou village (``SPLINK_BLOCKS``), u by random sampling,
  m by expectation maximisation on the pairs sharing an ID number and on those sharing name and birth
  date, predict, connected components at match probability 0.95.

Both get the same prepared records (the preparation is timed once, apart: ``prepare_seconds``) and are
timed from them to their clusters (Splink's time includes loading the records into DuckDB, as one Arrow
table). Both are scored on all record pairs: precision, recall and F1 of "same person". Goal (issue 3):
Baoxue F1 ≥ 0.99, ≥ Splink's F1, and no slower than Splink. Run:
``python bench/b2_linkage.py --sizes 10000,100000 --repeats 3 --out bench/results/b2.json``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import gc
import json
import logging
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from harness import PeakMemory, Record, argument_parser, paired_medians_async, write_records

from baoxue.collector import collector_paused
from baoxue.orgs.directory import default_directory
from baoxue.pii.citizen_id import normalise_id_number, parse_id_number
from baoxue.synth import SynthConfig, generate_district
from registry.feeds.validation import name_pinyin, parse_date
from registry.linkage.matching import best_matches
from registry.linkage.scoring import Person

DEPTS = ("police", "poverty", "dpf", "civil")
PERIODS = ("2026-03", "2026-09")
ENCODING = {"civil": "gbk"}
THRESHOLD = 0.95


def load(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every feed row as raw cells, and the true person of each (same order)."""
    truth: dict[tuple[str, str, int], str] = {}
    with (folder / "truth/feed_rows.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            truth[r["period"], r["dept"], int(r["row_number"])] = r["person_id"]
    rows, people = [], []
    for period in PERIODS:
        for dept in DEPTS:
            path = folder / f"feeds/{period}/{dept}.csv"
            with path.open(encoding=ENCODING.get(dept, "utf-8-sig"), newline="") as fh:
                for number, r in enumerate(csv.DictReader(fh), start=1):
                    rows.append(r)
                    people.append(truth[period, dept, number])
    return rows, people


def prepare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns both linkers see (what the registry derives from a feed row)."""
    directory = default_directory()
    out = []
    for i, r in enumerate(rows):
        check = parse_id_number(r["身份证号"])
        name = r["姓名"].replace(" ", "")
        birth = parse_date(r["出生日期"])
        match = directory.match_address(r["户籍地址"])
        out.append(
            {
                "unique_id": i,
                "id_number": normalise_id_number(r["身份证号"]) if check.facts is not None else None,
                "name": name or None,
                "name_pinyin": name_pinyin(name) if name else None,
                "sex": {"男": "M", "女": "F"}.get(r["性别"].strip()),
                "birth_date": birth.isoformat() if birth else None,
                "hukou_town": match.town_code,
                "hukou_village": match.village_code,
                "guardian_name": r["监护人姓名"].replace(" ", "") or None,
            }
        )
    return out


def baoxue_clusters(records: list[dict[str, Any]]) -> list[int]:
    """Cluster ids per record by the registry's rules (see the module docstring)."""
    parent = list(range(len(records)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # Rows sharing a valid ID number are one person: each points at the group's first row (still a root).
    by_id: dict[str, int] = {}
    for r in records:
        if r["id_number"]:
            parent[r["unique_id"]] = by_id.setdefault(r["id_number"], r["unique_id"])

    def person(r: dict[str, Any]) -> Person:
        birth = r["birth_date"]
        return Person(
            str(r["unique_id"]),
            r["name"],
            r["name_pinyin"],
            r["sex"],
            dt.date.fromisoformat(birth) if birth else None,
            r["hukou_town"],
            r["hukou_village"],
            r["guardian_name"],
        )

    # One representative per ID group (the registry holds one record per ID), plus every row without ID;
    # built with the collector paused, as the registry builds the known children's (``_candidates``).
    with collector_paused():
        reps = [person(records[i]) for i in by_id.values()]
        loose = [person(r) for r in records if not r["id_number"]]
    # The representatives hold an ID number: two of them are two children (``best_matches``' holds_id).
    identified = {p.key for p in reps}
    for p, cand, _points, _evidence, verdict in best_matches(
        loose, reps + loose, holds_id=identified.__contains__
    ):
        if verdict == "auto":
            parent[find(int(p.key))] = find(int(cand.key))
    return [find(i) for i in range(len(records))]


# Splink's blocking rules for predictions (pairs sharing all columns of one rule are compared). Each pair
# of birth date, name pinyin and village: a true pair is missed only where two of the three are noisy.
# At 100k they give 0.82 million candidate pairs and miss 3 of 194,709 true pairs; the rules before 28 Nov
# (birth date; name pinyin + sex) gave 9.9 million, missed 2, and at 1M would have given 935 million
# (≈ 7 hours here), so Splink could not be run at 1M.
SPLINK_BLOCKS = {
    "id_number": ("id_number",),
    "birth_date+hukou_village": ("birth_date", "hukou_village"),
    "name_pinyin+birth_date": ("name_pinyin", "birth_date"),
    "name_pinyin+hukou_village": ("name_pinyin", "hukou_village"),
}


def splink_clusters(records: list[dict[str, Any]]) -> list[int]:
    import duckdb
    import pyarrow
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    logging.getLogger("splink").setLevel(logging.ERROR)
    con = duckdb.connect()
    columns = list(records[0])
    # The records reach DuckDB as one Arrow table (columnar, no per-row statement): an executemany of
    # INSERTs, used before 28 Nov, took most of Splink's measured time at 100k and more at 1M.
    arrow = pyarrow.table(
        {
            c: pyarrow.array(
                [r[c] for r in records], pyarrow.int64() if c == "unique_id" else pyarrow.string()
            )
            for c in columns
        }
    )
    con.register("arrow_records", arrow)
    con.execute("CREATE TABLE records AS SELECT * FROM arrow_records")
    con.unregister("arrow_records")
    del arrow
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[block_on(*columns) for columns in SPLINK_BLOCKS.values()],
        comparisons=[
            cl.ExactMatch("id_number"),
            cl.ExactMatch("name"),
            cl.ExactMatch("name_pinyin"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("hukou_village"),
            cl.ExactMatch("guardian_name"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register("records"), settings)
    linker.training.estimate_probability_two_random_records_match([block_on("id_number")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    # m by EM on pairs that share a valid ID number (almost all true matches: every other column's m),
    # then on pairs that share name and birth date (the ID number's own m). EM on birth-date and pinyin
    # blocks, as this benchmark first did, learned "same name" as the match class at 100k (birth date
    # m: 0.33 exact, 0.52 "within 10 years"; ID number m: 0.67): Splink's F1 fell to 0.386 there.
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("id_number"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name", "birth_date"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, THRESHOLD)
    out = list(range(len(records)))
    for uid, cluster in con.execute(f"SELECT unique_id, cluster_id FROM {clusters.physical_name}").fetchall():
        out[int(uid)] = hash(str(cluster))
    return out


def pair_scores(clusters: list[int], truth: list[str]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``clusters`` against ``truth``."""

    def pairs(counter: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    predicted = pairs(Counter(clusters))
    actual = pairs(Counter(truth))
    both = pairs(Counter(zip(clusters, truth, strict=True)))
    precision = both / predicted if predicted else 1.0
    recall = both / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5)}


def district(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The feed rows of a generated district of about ``n`` children (seed 23) and their true persons."""
    with tempfile.TemporaryDirectory(prefix="baoxue-b2-") as folder:
        generate_district(SynthConfig(children=n, seed=23), Path(folder))
        return load(Path(folder))


def measure(n: int, repeats: int) -> Record:
    rows, truth = district(n)
    peak = PeakMemory()
    results: dict[str, Any] = defaultdict(dict)

    # The preparation both linkers need (ID check, pinyin, address match) is done once and timed apart:
    # before 28 Nov it was in Baoxue's time only (10 of Baoxue's 14 s at 100k on 28 Nov).
    start = time.perf_counter()
    records = prepare(rows)
    prepare_seconds = time.perf_counter() - start
    # The benchmark's own data (millions of raw rows, the truth, the prepared records) is kept out of the
    # cyclic garbage collector's scans, which it would otherwise slow for the Python side only (at 1M:
    # 64 and 58 s a run without this, 56 and 46 s with it; 28 Nov).
    gc.collect()
    gc.freeze()

    def ours() -> float:
        with peak:
            start = time.perf_counter()
            clusters = baoxue_clusters(records)
            elapsed = time.perf_counter() - start
        results["baoxue"] = pair_scores(clusters, truth)
        return elapsed

    def theirs() -> float:
        start = time.perf_counter()
        clusters = splink_clusters(records)
        elapsed = time.perf_counter() - start
        results["splink"] = pair_scores(clusters, truth)
        return elapsed

    async def ours_async() -> float:
        return ours()

    async def theirs_async() -> float:
        return theirs()

    mine, other = asyncio.run(paired_medians_async(ours_async, theirs_async, repeats))
    f1, f1_splink = results["baoxue"]["f1"], results["splink"]["f1"]
    met = f1 >= 0.99 and f1 >= f1_splink and mine.median <= other.median
    return Record(
        "b2_linkage_f1_vs_splink",
        n,
        f1,
        f1_splink,
        "F1",
        round(f1 - f1_splink, 5),
        "F1 ≥ 0.99, ≥ Splink, not slower",
        met,
        peak.mb,
        repeats,
        {
            "records": len(rows),
            "baoxue_scores": results["baoxue"],
            "splink_scores": results["splink"],
            "prepare_seconds": round(prepare_seconds, 3),
            "baoxue_seconds": round(mine.median, 3),
            "baoxue_samples": [round(x, 3) for x in mine.samples],
            "splink_samples": [round(x, 3) for x in other.samples],
            "splink_seconds": round(other.median, 3),
        },
    )


def splink_candidate_pairs(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many pairs each of Splink's blocking rules above compares (the rules are equality on the
    columns, so this is exact per rule; Splink compares a pair caught by several rules once)."""

    def pairs(columns: tuple[str, ...]) -> int:
        groups = Counter(tuple(r[c] for c in columns) for r in records)
        return sum(n * (n - 1) // 2 for key, n in groups.items() if None not in key)

    return {name: pairs(columns) for name, columns in SPLINK_BLOCKS.items()}


def baoxue_only(n: int) -> dict[str, Any]:
    """Baoxue's side at ``n`` without Splink (for a size Splink cannot run here), and Splink's pair count."""
    rows, truth = district(n)
    peak = PeakMemory()
    with peak:
        start = time.perf_counter()
        records = prepare(rows)
        prepared = time.perf_counter()
        clusters = baoxue_clusters(records)
        elapsed = time.perf_counter() - prepared
    return {
        "size": n,
        "records": len(rows),
        "baoxue_scores": pair_scores(clusters, truth),
        "prepare_seconds": round(prepared - start, 1),
        "baoxue_seconds": round(elapsed, 1),
        "peak_memory_mb": peak.mb,
        "splink_candidate_pairs": splink_candidate_pairs(records),
    }


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--baoxue-only",
        action="store_true",
        help="Baoxue's scores, time and memory and Splink's candidate pairs per size, to --out as plain JSON "
        "(not benchmark records): for sizes Splink cannot run on this machine",
    )
    args = parser.parse_args()
    if args.baoxue_only:
        results = []
        for n in args.sizes:
            results.append(baoxue_only(n))
            print(json.dumps(results[-1]), flush=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return
    records = []
    for n in args.sizes:
        record = measure(n, args.repeats)
        records.append(record)
        print(f"{record.benchmark} n={n}: {record.extra}")
    write_records(args.out, records)


if __name__ == "__main__":
    main()
