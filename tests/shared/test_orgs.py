"""The organisation directory: codes, jurisdiction prefixes, school districts, address matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baoxue.orgs import AddressMatch, OrgDirectory, default_directory
from baoxue.orgs.directory import DEFAULT_DATA_FILE

# Verified against the NBS statistical division codes (see the JSON "sources").
TOWN_CODES = {
    "370406001": "山城街道",
    "370406101": "店子镇",
    "370406102": "西集镇",
    "370406103": "桑村镇",
    "370406104": "北庄镇",
    "370406105": "城头镇",
    "370406106": "徐庄镇",
    "370406107": "水泉镇",
    "370406108": "冯卯镇",
    "370406109": "凫城镇",
}
DIANZI = "370406101"
SHANCHENG = "370406001"


@pytest.fixture(scope="module")
def d() -> OrgDirectory:
    return default_directory()


def test_default_directory_is_cached_and_versioned(d: OrgDirectory) -> None:
    assert default_directory() is d
    assert d.version == "2026.1"
    assert d.district_code == "370406"
    assert d.sources, "the data file must say where its facts come from"


def test_the_ten_towns_have_their_statistical_codes(d: OrgDirectory) -> None:
    assert {t.code: t.name_zh for t in d.towns()} == TOWN_CODES
    assert [t.code for t in d.towns(include_district_direct=True)][-1] == "370406900"


def test_codes_are_fixed_width_and_nested(d: OrgDirectory) -> None:
    widths = {"district": 6, "town": 9, "school_district": 11, "school": 14}
    for org in d:
        if org.kind == "department":
            assert org.code.startswith("370406D") and len(org.code) == 9
            assert org.parent == "370406"
            continue
        assert org.code.isdigit() and len(org.code) == widths[org.kind], org.code
        if org.parent is not None:
            assert org.code.startswith(org.parent), org.code


def test_every_school_chain_reaches_the_district(d: OrgDirectory) -> None:
    schools = d.schools()
    assert len(schools) >= 40
    for school in schools:
        chain = d.parent_chain(school.code)
        assert [o.kind for o in chain] == ["school", "school_district", "town", "district"]
        assert chain[-1].code == "370406"


def test_each_town_has_a_school_district_and_the_usual_schools(d: OrgDirectory) -> None:
    for town in d.towns():
        sd = d.school_district_for(town_code=town.code)
        assert sd is not None and sd.code == town.code + "01"
        types = [s.school_type for s in d.schools(within=town.code)]
        assert types.count("junior") == 1
        assert 3 <= types.count("primary") <= 6  # central + 2-5 village primaries


def test_district_direct_schools(d: OrgDirectory) -> None:
    direct = {s.name_zh: s for s in d.schools(within="370406900")}
    assert direct["枣庄市第十八中学"].school_type == "junior"
    assert direct["山亭区特殊教育学校"].school_type == "special_education"
    assert direct["山亭区职业中等专业学校"].school_type == "vocational"
    assert all(d.is_district_direct(s.code) for s in direct.values())
    assert d.schools(kind="vocational") == [direct["山亭区职业中等专业学校"]]


def test_departments_have_roles_and_district_jurisdiction(d: OrgDirectory) -> None:
    roles = {o.department_role for o in d.departments()}
    assert {
        "bureau",
        "dept_police",
        "dept_poverty",
        "dept_dpf",
        "dept_civil",
        "justice",
        "inspector",
    } <= roles
    assert len(d.departments()) == 11
    assert d.by_role("dept_poverty").name_zh == "区扶贫办"
    for dept in d.departments():
        assert d.jurisdiction_of(dept.code) == "370406"
    with pytest.raises(KeyError):
        d.by_role("nonexistent")  # type: ignore[arg-type]


def test_jurisdiction_is_a_prefix_test(d: OrgDirectory) -> None:
    school = d.schools(within=DIANZI)[0]
    sd = DIANZI + "01"
    assert d.jurisdiction_of(DIANZI) == DIANZI
    assert d.jurisdiction_of(sd) == sd
    assert d.jurisdiction_of(school.code) == school.code
    assert d.jurisdiction_of("370406") == "370406"
    assert d.is_within(school.code, DIANZI)
    assert d.is_within(school.code, sd)
    assert d.is_within(school.code, "370406")
    assert not d.is_within(school.code, SHANCHENG)
    # A department's scope is the district, its own code is no prefix of anything.
    police = d.by_role("dept_police").code
    assert d.is_within(school.code, police)
    assert d.is_within(police, "370406")
    assert not d.is_within(police, DIANZI)
    with pytest.raises(KeyError):
        d.jurisdiction_of("999999")


def test_villages_belong_to_towns_and_school_districts(d: OrgDirectory) -> None:
    names = [v.name_zh for v in d.villages()]
    assert len(names) == len(set(names)), "village names are unique in the district"
    for town in d.towns():
        villages = d.villages(town.code)
        assert 8 <= len(villages) <= 25
        for v in villages:
            assert v.code.startswith(town.code) and len(v.code) == 12
            assert v.code[9] in "02", "communities 0xx, villages 2xx: never a school-district prefix"
            assert d.school_district_for(village_code=v.code) == d.get(v.served_by)
            assert d.is_within(v.code, v.served_by)
            assert d.is_within(v.code, town.code)
            assert not d.is_within(v.code, SHANCHENG if town.code != SHANCHENG else DIANZI)
            assert d.town_of(v.code) == town.code
            assert v.primary_school is not None and d.is_within(v.primary_school, town.code)


def test_town_of_and_unknowns(d: OrgDirectory) -> None:
    school = d.schools(within=DIANZI)[0]
    assert d.town_of(school.code) == DIANZI
    assert d.town_of(DIANZI + "01") == DIANZI
    assert d.town_of("370406") is None
    assert d.town_of(d.by_role("bureau").code) is None
    assert d.get("nope") is None
    assert d.school_district_for() is None
    assert d.school_district_for(town_code="370406999") is None
    assert [o.code for o in d.parent_chain(d.villages(DIANZI)[0].code)] == [DIANZI, "370406"]


def test_match_address_full_abbreviated_and_unknown(d: OrgDirectory) -> None:
    village = d.villages(DIANZI)[3]
    stem = village.name_zh.removesuffix("村")
    exact = AddressMatch(DIANZI, village.code, "exact")
    assert d.match_address(f"山东省枣庄市山亭区店子镇{village.name_zh}12号") == exact
    assert d.match_address(f"山亭区店子镇{village.name_zh}") == exact
    assert d.match_address(f"店子{village.name_zh}12号") == exact
    assert d.match_address(f"店子{stem}12号") == exact
    assert d.match_address(f"{village.name_zh}5号") == exact  # unique village name, no town
    assert d.match_address("山东省枣庄市山亭区店子镇") == AddressMatch(DIANZI, None, "town_only")
    assert d.match_address("山东省枣庄市山亭区店子镇不存在村8号") == AddressMatch(DIANZI, None, "town_only")
    assert d.match_address("山城街道府前社区3号楼").town_code == SHANCHENG
    assert d.match_address("山东省滕州市荆河街道100号") == AddressMatch(None, None, "none")
    assert d.match_address("") == AddressMatch(None, None, "none")


def test_match_address_recognises_every_village_written_every_way(d: OrgDirectory) -> None:
    for town in d.towns():
        abbr = town.aliases[-1]
        for v in d.villages(town.code):
            for text in (
                f"山东省枣庄市山亭区{town.name_zh}{v.name_zh}1号",
                f"{abbr}{v.name_zh}",
                f"{town.name_zh}{v.name_zh}",
            ):
                assert d.match_address(text) == AddressMatch(town.code, v.code, "exact"), text


def test_load_from_a_path_and_reject_inconsistent_files(tmp_path: Path) -> None:
    doc = json.loads(DEFAULT_DATA_FILE.read_text(encoding="utf-8"))
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    copy = OrgDirectory.load(path)
    assert len(copy) == len(default_directory())

    doc["organisations"][-1]["parent"] = "370406777"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown parent"):
        OrgDirectory.load(path)


def test_organisations_are_immutable(d: OrgDirectory) -> None:
    town = d.get(DIANZI)
    assert town is not None
    with pytest.raises(ValueError):
        town.name_zh = "改名"  # type: ignore[misc]
