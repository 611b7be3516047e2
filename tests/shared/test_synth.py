"""The synthetic district generator: determinism, valid truth, realistic rates, noisy but mapped feeds."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Literal

import pytest
from pypinyin import Style, pinyin

from baoxue.orgs import default_directory
from baoxue.pii.address_codes import address_code_status
from baoxue.pii.citizen_id import age_on, normalise_id_number, parse_id_number, validate_student_number
from baoxue.synth import DEPARTMENTS, FEED_HEADER, NoiseRates, SynthConfig, generate_district, main
from baoxue.synth.generator import MIGRANT_ORIGINS
from baoxue.synth.identity import DISTRICT_CODE, NEIGHBOUR_CODES, OVERFLOW_CODES, RETIRED_CODES
from baoxue.synth.names import DATA_DIR, homophone_groups, name_bank

N = 5_000
AS_OF = date(2026, 8, 31)
PERIODS = ("2026-03", "2026-09")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("district")
    generate_district(SynthConfig(children=N, seed=7), path)
    return path


@pytest.fixture(scope="module")
def children(out: Path) -> list[dict[str, str]]:
    return _read(out / "truth/children.csv")


@pytest.fixture(scope="module")
def people(children: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {c["person_id"]: c for c in children}


@pytest.fixture(scope="module")
def feed_rows(out: Path) -> list[dict[str, str]]:
    return _read(out / "truth/feed_rows.csv")


def _read(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh))


def _feed(out: Path, period: str, dept: str) -> list[dict[str, str]]:
    return _read(out / "feeds" / period / f"{dept}.csv", "gbk" if dept == "civil" else "utf-8-sig")


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------- determinism, manifest


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_district(SynthConfig(children=800, seed=11), tmp_path / "a")
    generate_district(SynthConfig(children=800, seed=11), tmp_path / "b")
    generate_district(SynthConfig(children=800, seed=12), tmp_path / "c")
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["truth/children.csv"] != c["truth/children.csv"]


def test_manifest_counts_match_the_files(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 7
    assert manifest["config"]["children"] == N
    assert manifest["config"]["directory_version"] == default_directory().version
    for rel, rows in manifest["files"].items():
        with (out / rel).open("rb") as fh:
            assert sum(1 for _ in fh) - 1 == rows, rel
    assert set(manifest["counts"]["school_situation"]) >= {"enrolled_local", "enrolled_elsewhere"}


# ---------------------------------------------------------------------------- the truth


def test_every_truth_id_is_valid_unique_and_agrees_with_the_record(children: list[dict[str, str]]) -> None:
    ids = [c["id_number"] for c in children]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    for c in children:
        sex: Literal["M", "F"] = "M" if c["sex"] == "M" else "F"
        assert c["sex"] == sex
        check = parse_id_number(
            c["id_number"], expected_birth_date=date.fromisoformat(c["birth_date"]), expected_sex=sex
        )
        assert check.ok, (c["person_id"], check.errors)
    address_codes = Counter(c["id_number"][:6] for c in children)
    assert address_codes.most_common(1)[0][0] == "370406"
    assert address_codes["370406"] / len(children) > 0.9
    assert len(address_codes) > 3, "some IDs from neighbouring or re-coded districts"


def test_only_the_retired_code_is_out_of_use_in_the_birth_year() -> None:
    # Every other code the generator gives an ID number must be in use in every birth year of a
    # school-age child, or the registry flags rows the truth says are clean (id_address_code_*).
    codes = {DISTRICT_CODE, *NEIGHBOUR_CODES, *OVERFLOW_CODES, *(code for code, _ in MIGRANT_ORIGINS)}
    assert {address_code_status(code, year) for code in codes for year in range(2005, 2026)} == {"in_use"}
    assert {address_code_status(code, 2015) for code in RETIRED_CODES} == {"not_in_use"}


def test_the_number_of_children_and_their_ages(children: list[dict[str, str]]) -> None:
    real = [c for c in children if c["registry_status"] != "duplicate"]
    assert len(real) == N
    ages = Counter(age_on(date.fromisoformat(c["birth_date"]), AS_OF) for c in real)
    assert set(ages) <= set(range(5, 16))
    outside = ages[5] + ages[15]
    assert 0 < outside / N < 0.015
    for age in range(6, 15):
        assert ages[age] / N > 0.07


def _share(children: list[dict[str, str]], pred: object) -> float:
    assert callable(pred)
    return sum(1 for c in children if pred(c)) / len(children)


@pytest.mark.parametrize(
    ("label", "low", "high"),
    [
        ("enrolled_local", 0.93, 0.975),
        ("enrolled_elsewhere", 0.008, 0.03),
        ("deferred_or_exempted", 0.0005, 0.006),
        ("not_in_school", 0.0005, 0.008),
        ("registered_poor", 0.045, 0.075),
        ("left_behind", 0.06, 0.10),
        ("disabled", 0.005, 0.016),
        ("orphan", 0.0005, 0.007),
        ("low_income", 0.02, 0.045),
        ("migrant", 0.01, 0.03),
    ],
)
def test_rates_are_realistic(children: list[dict[str, str]], label: str, low: float, high: float) -> None:
    real = [c for c in children if c["registry_status"] != "duplicate"]
    situations = {"enrolled_local", "enrolled_elsewhere", "not_in_school"}
    if label in situations:
        share = _share(real, lambda c: c["school_situation"] == label)
    elif label == "deferred_or_exempted":
        share = _share(real, lambda c: c["school_situation"] in ("deferred", "exempted"))
    else:
        share = _share(real, lambda c: label in c["categories"].split(";"))
    assert low <= share <= high, (label, share)


def test_situations_are_consistent(children: list[dict[str, str]], people: dict[str, dict[str, str]]) -> None:
    d = default_directory()
    for c in children:
        situation = c["school_situation"]
        if situation in ("enrolled_local", "placed", "enrolled_without_xueji"):
            school = d.get(c["school_code"])
            assert school is not None and school.kind == "school", c
        if situation == "placed":
            assert c["placement_mode"] in ("special_school", "home_delivery", "remote", "institution_class")
            assert "disabled" in c["categories"]
        if situation == "not_in_school":
            assert c["dropout_reason"], c
        else:
            assert not c["dropout_reason"]
        if "disabled" in c["categories"]:
            assert c["disability_type"] and c["disability_grade"] in "1234"
        if c["registry_status"] == "duplicate":
            original = people[c["duplicate_of"]]
            assert (original["name"], original["birth_date"]) == (c["name"], c["birth_date"])
            assert original["id_number"] != c["id_number"]
        if "migrant" in c["categories"]:
            assert c["hukou_town"] == "" and not c["id_number"].startswith("370406")
        else:
            assert d.town_of(c["hukou_village"]) == c["hukou_town"]


def test_names_follow_the_frequency_tables(children: list[dict[str, str]]) -> None:
    bank = name_bank()
    surnames = Counter(c["name"][0] for c in children)
    assert surnames.most_common(1)[0][0] in "王张李"
    assert len(surnames) > 60
    given = [len(c["name"]) - 1 for c in children if c["name"][:2] != "欧阳"]
    assert 0.70 < sum(1 for g in given if g == 2) / len(given) < 0.80
    assert len(bank.surnames.items) >= 120
    assert len(set(bank.boy.items) | set(bank.girl.items)) >= 400


def test_homophone_groups_share_a_reading_and_are_gbk() -> None:
    groups = homophone_groups()
    assert len(groups) >= 60
    for group in groups:
        readings = [set(pinyin(ch, style=Style.NORMAL, heteronym=True)[0]) for ch in group]
        assert set.intersection(*readings), group
        group.encode("gbk")
    for name in ("surnames.tsv", "given_chars.tsv"):
        (DATA_DIR / name).read_text(encoding="utf-8").encode("gbk")
    bank = name_bank()
    assert bank.homophone_variant("王伟", 1, __import__("random").Random(1)) != "王伟"


# ---------------------------------------------------------------------------- department feeds


def test_feed_files_headers_and_encodings(out: Path) -> None:
    for period in PERIODS:
        for dept in DEPARTMENTS:
            raw = (out / "feeds" / period / f"{dept}.csv").read_bytes()
            if dept == "civil":
                assert not raw.startswith(b"\xef\xbb\xbf")
                text = raw.decode("gbk")
                with pytest.raises(UnicodeDecodeError):
                    raw.decode("utf-8")
            else:
                assert raw.startswith(b"\xef\xbb\xbf")
                text = raw.decode("utf-8-sig")
            assert text.split("\r\n", 1)[0] == ",".join(FEED_HEADER)
            assert len(_feed(out, period, dept)) > 0


def test_truth_maps_every_feed_row(
    out: Path, feed_rows: list[dict[str, str]], people: dict[str, dict[str, str]]
) -> None:
    truth = {(r["period"], r["dept"], int(r["row_number"])): r for r in feed_rows}
    assert len(truth) == len(feed_rows)
    for period in PERIODS:
        for dept in DEPARTMENTS:
            rows = _feed(out, period, dept)
            for i, row in enumerate(rows, 1):
                mapped = truth.pop((period, dept, i))
                person = people[mapped["person_id"]]
                kinds = set(filter(None, mapped["noise"].split(";")))
                if not kinds & {"missing_id", "typo_id", "transposed_id"}:
                    assert normalise_id_number(row["身份证号"]) == person["id_number"]
                if not kinds & {"homophone_name", "name_whitespace"}:
                    assert row["姓名"] == person["name"]
                if not kinds & {"wrong_sex"}:
                    assert row["性别"] == ("男" if person["sex"] == "M" else "女")
    assert not truth, "feed_rows.csv lists rows that no feed has"


def test_department_feeds_hold_the_right_children(out: Path, feed_rows: list[dict[str, str]]) -> None:
    truth_children = {c["person_id"]: c for c in _read(out / "truth/children.csv")}
    by_feed: dict[tuple[str, str], set[str]] = {}
    for r in feed_rows:
        by_feed.setdefault((r["period"], r["dept"]), set()).add(r["person_id"])
    latest = by_feed["2026-09", "police"]
    for pid, c in truth_children.items():
        cats = c["categories"].split(";")
        if c["registry_status"] in ("active", "missing", "duplicate") and "migrant" not in cats:
            assert pid in latest
    for dept, category in (("poverty", "registered_poor"), ("dpf", "disabled")):
        listed = by_feed["2026-09", dept]
        assert all(category in truth_children[p]["categories"] for p in listed)
        eligible = [
            p
            for p, c in truth_children.items()
            if category in c["categories"] and c["registry_status"] == "active"
        ]
        assert len(listed) / len(eligible) > 0.9
    gone = {p for p, c in truth_children.items() if c["registry_status"] in ("deceased", "moved_out")}
    assert gone <= by_feed["2026-03", "police"]
    assert len(gone & latest) < len(gone) or not gone


def test_noise_is_present_at_configured_rates(out: Path, feed_rows: list[dict[str, str]]) -> None:
    kinds = Counter(k for r in feed_rows for k in r["noise"].split(";") if k)
    total = len(feed_rows)
    for kind in (
        "missing_id",
        "typo_id",
        "transposed_id",
        "full_width_id",
        "homophone_name",
        "wrong_birth_date",
        "abbreviated_address",
        "missing_phone",
        "duplicate_row",
        "lowercase_x",
    ):
        assert kinds[kind] > 0, kind
    rates = NoiseRates()
    assert abs(kinds["missing_id"] / total - rates.missing_id) < 0.01
    assert abs(kinds["abbreviated_address"] / total - rates.abbreviated_address) < 0.03
    duplicates = Counter((r["period"], r["dept"], r["person_id"]) for r in feed_rows)
    assert any(n > 1 for n in duplicates.values())
    # Clerks' date formats vary: ISO, YYYY/M/D and YYYYMMDD all occur.
    dates = [r["出生日期"] for r in _feed(out, "2026-09", "civil")] + [
        r["出生日期"] for r in _feed(out, "2026-09", "police")
    ]
    assert any("/" in x for x in dates) and any("-" in x for x in dates) and any(x.isdigit() for x in dates)


def test_abbreviated_feed_addresses_still_point_to_the_right_village(
    out: Path, feed_rows: list[dict[str, str]], people: dict[str, dict[str, str]]
) -> None:
    d = default_directory()
    truth = {(r["period"], r["dept"], int(r["row_number"])): r for r in feed_rows}
    checked = 0
    for dept in DEPARTMENTS:
        for i, row in enumerate(_feed(out, "2026-09", dept), 1):
            person = people[truth["2026-09", dept, i]["person_id"]]
            if person["hukou_village"]:
                match = d.match_address(row["户籍地址"])
                assert match.village_code == person["hukou_village"], row["户籍地址"]
                checked += 1
    assert checked > N


def test_disabled_feed_carries_type_and_grade(out: Path) -> None:
    rows = _feed(out, "2026-09", "dpf")
    assert all(r["残疾类别"].endswith("残疾") and r["残疾等级"] for r in rows)
    assert all(r["类别"] == "残疾" for r in rows)
    civil = _feed(out, "2026-09", "civil")
    labels = {label for r in civil for label in r["类别"].split("、")}
    assert labels <= {"孤儿", "留守", "低保", "特困供养", "服刑人员未成年子女"}
    assert "留守" in labels


# ---------------------------------------------------------------------------- students, deferrals


def test_student_registry_export(out: Path, people: dict[str, dict[str, str]]) -> None:
    rows = _read(out / "students/xueji.csv", "utf-8-sig")
    mapping = _read(out / "truth/xueji_rows.csv")
    assert len(rows) == len(mapping)
    d = default_directory()
    kinds = Counter(r["student_number"][0] for r in rows)
    assert kinds["G"] / len(rows) > 0.95 and kinds["J"] > 0
    seen = set()
    for row, m in zip(rows, mapping, strict=True):
        person = people[m["person_id"]]
        seen.add(m["person_id"])
        assert validate_student_number(row["student_number"]) == (), row["student_number"]
        if row["student_number"].startswith("G"):
            assert row["student_number"][1:] == row["id_number"] == person["id_number"]
        assert d.get(row["school_code"]) is not None
        assert 1 <= int(row["grade"]) <= 9
        assert row["status"] in ("enrolled", "suspended", "dropped_out", "transferred_out", "deceased")
    for pid, c in people.items():
        if c["school_situation"] in ("enrolled_local", "placed"):
            assert pid in seen
        if c["school_situation"] in ("enrolled_without_xueji", "enrolled_elsewhere", "hukou_only", "abroad"):
            assert pid not in seen or c["registry_status"] == "moved_out"


def test_deferrals(out: Path, people: dict[str, dict[str, str]]) -> None:
    rows = _read(out / "deferrals.csv")
    expected = {p for p, c in people.items() if c["school_situation"] in ("deferred", "exempted")}
    assert {r["person_id"] for r in rows} == expected
    for r in rows:
        c = people[r["person_id"]]
        assert r["kind"] == ("deferral" if c["school_situation"] == "deferred" else "exemption")
        assert r["reason"] in ("illness", "disability") and r["evidence"]
        assert r["school_district"] == default_directory().get(c["hukou_town"] + "01").code  # type: ignore[union-attr]


def test_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--children", "300", "--seed", "3", "--out", str(tmp_path / "cli")]) == 0
    assert "300 children" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "cli/manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["seed"] == 3
    assert main(["--children", "50", "--out", str(tmp_path / "one"), "--previous-period", "none", "-q"]) == 0
    assert not (tmp_path / "one/feeds/2026-03").exists()
    assert (
        main(["--", "--children", "20", "--out", str(tmp_path / "fwd"), "-q"]) == 0
    )  # forwarded by a parent CLI
