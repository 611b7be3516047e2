"""The synthetic district: children, department feeds, student registry, deferrals, ground truth.

:func:`generate_district` walks the district village by village, creates families and their children,
and streams every file as it goes, so memory stays flat at millions of children. All randomness comes from
``random.Random`` streams seeded from the config's seed (one for the population, one per feed), so one
seed always gives the same bytes, and noise in one feed is independent of every other feed.
"""

# ruff: noqa: S311 - random.Random is right here: reproducible synthetic data, nothing secret.
from __future__ import annotations

import csv
import heapq
import math
import random
import re
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import IO, Any

from baoxue.orgs.directory import OrgDirectory, Village
from baoxue.synth import noise as nz
from baoxue.synth.config import GENERATOR_VERSION, Manifest, SynthConfig
from baoxue.synth.identity import DISTRICT_CODE, NEIGHBOUR_CODES, RETIRED_CODES, IdFactory, phone
from baoxue.synth.names import NameBank, name_bank

CATEGORY_LABELS = {
    "resident": "常住",
    "registered_poor": "建档立卡",
    "disabled": "残疾",
    "left_behind": "留守",
    "orphan": "孤儿",
    "low_income": "低保",
    "extreme_poverty": "特困供养",
    "prisoner_child": "服刑人员未成年子女",
    "migrant": "流动",
}
CIVIL_CATEGORIES = ("orphan", "left_behind", "low_income", "extreme_poverty", "prisoner_child")
DISABILITY_TYPES = {
    "visual": "视力残疾",
    "hearing": "听力残疾",
    "speech": "言语残疾",
    "physical": "肢体残疾",
    "intellectual": "智力残疾",
    "mental": "精神残疾",
    "multiple": "多重残疾",
}
_DISABILITY_WEIGHTS = {
    "visual": 8,
    "hearing": 10,
    "speech": 6,
    "physical": 22,
    "intellectual": 34,
    "mental": 8,
    "multiple": 12,
}
GRADE_LABELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}

FEED_HEADER = (
    "姓名",
    "身份证号",
    "性别",
    "出生日期",
    "户籍地址",
    "现住址",
    "监护人姓名",
    "监护人电话",
    "类别",
    "残疾类别",
    "残疾等级",
)
DEPARTMENTS = ("police", "poverty", "dpf", "civil")
FEED_ENCODING = {"police": "utf-8-sig", "poverty": "utf-8-sig", "dpf": "utf-8-sig", "civil": "gbk"}
"""Civil affairs' system exports GBK, like many real county systems; the others UTF-8 with BOM."""
_DATE_STYLES = {  # how each department's clerks write dates: (style, weight)
    "police": (("iso", 90), ("compact", 10)),
    "poverty": (("iso", 60), ("slash", 30), ("compact", 10)),
    "dpf": (("iso", 70), ("slash", 30)),
    "civil": (("slash", 57), ("iso", 30), ("compact", 10), ("dot", 3)),
}
_ADDRESS_STYLES = {  # how complete the hukou address is: (style, weight)
    "police": (("full", 80), ("county", 20)),
    "poverty": (("full", 40), ("county", 35), ("town", 25)),
    "dpf": (("full", 40), ("county", 35), ("town", 25)),
    "civil": (("full", 30), ("county", 40), ("town", 30)),
}

CHILDREN_HEADER = (
    "person_id",
    "name",
    "id_number",
    "sex",
    "birth_date",
    "hukou_town",
    "hukou_village",
    "hukou_address",
    "current_address",
    "guardian_name",
    "guardian_phone",
    "categories",
    "disability_type",
    "disability_grade",
    "registry_status",
    "school_situation",
    "school_code",
    "placement_mode",
    "dropout_reason",
    "duplicate_of",
)
FEED_ROWS_HEADER = ("period", "dept", "row_number", "person_id", "noise")
XUEJI_HEADER = ("student_number", "id_number", "name", "sex", "birth_date", "school_code", "grade", "status")
XUEJI_ROWS_HEADER = ("row_number", "person_id")
DEFERRALS_HEADER = ("person_id", "kind", "reason", "evidence", "applied_on", "school_district")

# Where families who left the district live now, and where migrant families come from.
OUTSIDE_PLACES = (
    "山东省滕州市荆河街道",
    "山东省枣庄市市中区光明路街道",
    "山东省枣庄市薛城区临城街道",
    "山东省济南市历下区",
    "山东省青岛市黄岛区",
    "江苏省苏州市昆山市",
    "江苏省徐州市铜山区",
    "浙江省宁波市鄞州区",
    "上海市闵行区",
    "北京市大兴区",
)
MIGRANT_ORIGINS = (  # (ID address code, hukou address prefix)
    ("370481", "山东省滕州市"),
    ("370402", "山东省枣庄市市中区"),
    ("370403", "山东省枣庄市薛城区"),
    ("370404", "山东省枣庄市峄城区"),
    ("370405", "山东省枣庄市台儿庄区"),
    ("370883", "山东省邹城市"),
    ("371321", "山东省沂南县"),
    ("320322", "江苏省沛县"),
    ("341321", "安徽省砀山县"),
)
ABROAD_PLACES = ("韩国首尔", "日本大阪", "新加坡")
_DROPOUT_REASONS = (
    ("learning_weariness", 35),
    ("family_economic", 10),
    ("illness", 8),
    ("working", 10),
    ("early_marriage", 2),
    ("guardian_refusal", 8),
    ("illegal_schooling", 6),
    ("unsupervised", 8),
    ("whereabouts_unknown", 5),
    ("other", 8),
)
_PLACEMENT_MODES = (("special_school", 45), ("home_delivery", 35), ("remote", 5), ("institution_class", 15))
_BIRTH_YEAR_WEIGHTS = {  # relative births per year in the district's cohorts (post-2016 two-child peak)
    2010: 1.0,
    2011: 1.0,
    2012: 1.05,
    2013: 1.0,
    2014: 1.1,
    2015: 1.0,
    2016: 1.25,
    2017: 1.3,
    2018: 1.05,
    2019: 0.95,
    2020: 0.8,
    2021: 0.7,
}


_UNSAFE_TEXT = re.compile('["\r\n,]')


def _check_plain(texts: Iterable[str], what: str) -> None:
    """Refuse input text with quotes, commas or line breaks, which the fast CSV path must not meet."""
    for text in texts:
        if _UNSAFE_TEXT.search(text):
            raise ValueError(f"{what} {text!r} contains a quote, comma or line break")


TOWN_CHILD_SHARES = {
    "370406001": 0.22,
    "370406101": 0.06,
    "370406102": 0.08,
    "370406103": 0.12,
    "370406104": 0.07,
    "370406105": 0.09,
    "370406106": 0.08,
    "370406107": 0.09,
    "370406108": 0.11,
    "370406109": 0.08,
}
"""Share of the district's children per town, after the town populations of the 2000 census (山城 the
largest, 店子 the smallest), rounded; towns missing here (another directory) get 0.08."""


class _RowWriter:
    """A CSV writer for generator output: plain comma joins, buffered until :meth:`flush`.

    Several times cheaper than ``csv.writer.writerow`` per row. Fields must be ``str`` without quotes or
    line breaks (the generator checks its inputs once); a row whose fields contain commas is detected
    and written through the csv module instead. ``append`` takes a line that is already joined and
    known to be plain. The owner calls :meth:`flush` every few thousand rows.
    """

    __slots__ = ("_csv", "_fh", "_lines", "_prefix", "_terminator", "append")

    def __init__(self, fh: IO[str], terminator: str = "\n", bom: bool = False) -> None:
        self._fh = fh
        self._terminator = terminator
        self._csv = csv.writer(fh, lineterminator=terminator)
        self._lines: list[str] = []
        self.append = self._lines.append
        self._prefix = "\ufeff" if bom else ""

    def writerow(self, row: Sequence[str]) -> None:
        line = ",".join(row)
        if line.count(",") != len(row) - 1:
            self.flush()
            self._csv.writerow(row)
            return
        self.append(line)

    def flush(self) -> None:
        if self._prefix:
            self._fh.write(self._prefix)
            self._prefix = ""
        if self._lines:
            self._lines.append("")
            self._fh.write(self._terminator.join(self._lines))
            self._lines.clear()


class _Choice:
    """Weighted choice among a few items with one uniform number."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, pairs: Sequence[tuple[Any, float]]) -> None:
        self.items = [item for item, weight in pairs if weight > 0]
        self.cum = list(accumulate(weight for _, weight in pairs if weight > 0))
        self.total = self.cum[-1]

    def draw(self, rand: float) -> Any:
        try:
            return self.items[bisect(self.cum, rand * self.total)]
        except IndexError:  # rand * total rounded up to total
            return self.items[-1]


@dataclass(frozen=True)
class _Day:
    """A possible birth date with its precomputed renderings and the age on the cut-off date."""

    born: date
    iso: str
    ymd: str
    age: int


@dataclass(frozen=True)
class _Place:
    """A village with everything the generator needs about it, precomputed once."""

    village: Village
    town_name: str
    town_abbr: str
    full: str
    county: str
    town_level: str
    abbreviated: tuple[str, ...]
    is_community: bool
    primary: _Choice
    junior: _Choice
    central_primary: str


class _Family:
    """One household: surname, guardian, address and the family-level categories."""

    __slots__ = (
        "categories",
        "children",
        "current_address",
        "guardian_name",
        "guardian_phone",
        "hukou_address",
        "id_address",
        "mobility",
        "place",
        "surname",
    )
    place: _Place
    surname: str
    id_address: str
    """Address code of the children's ID numbers (usually the district, sometimes a neighbour)."""
    hukou_address: str
    current_address: str
    mobility: str
    """``local``, ``away`` (children enrolled elsewhere), ``hukou_only`` or ``abroad``."""
    guardian_name: str
    guardian_phone: str

    def __init__(self) -> None:
        self.children = 0
        self.categories: tuple[str, ...] = ()


class _FeedWriter:
    """One department feed file of one period, with its own noise stream and duplicate-row queue."""

    __slots__ = (
        "address_style",
        "date_style",
        "dept",
        "key",
        "pending",
        "period",
        "rng",
        "rows",
        "seq",
        "truth",
        "writer",
    )

    def __init__(self, period: str, dept: str, writer: _RowWriter, truth: _RowWriter, seed: int) -> None:
        self.period = period
        self.dept = dept
        self.writer = writer
        self.truth = truth
        self.key = f"{period},{dept},"
        self.date_style = _Choice(_DATE_STYLES[dept])
        self.address_style = _Choice(_ADDRESS_STYLES[dept])
        self.rng = random.Random(f"{seed}:{period}:{dept}")
        self.rows = 0
        self.seq = 0
        self.pending: list[tuple[int, int, list[str], str, str]] = []

    def add(self, row: list[str], person_id: str, noise: str) -> None:
        """Write ``row`` (and any scheduled duplicate now due), recording who each row describes."""
        self._write(row, person_id, noise)
        while self.pending and self.pending[0][0] <= self.rows:
            _, _, dup, pid, dup_noise = heapq.heappop(self.pending)
            self._write(dup, pid, dup_noise)

    def schedule_duplicate(self, row: list[str], person_id: str, noise: str) -> None:
        """Repeat ``row`` 1-200 rows later in the same file, as a batch assembled from two lists would."""
        self.seq += 1
        due = self.rows + self.rng.randint(1, 200)
        heapq.heappush(self.pending, (due, self.seq, row, person_id, noise))

    def flush(self) -> None:
        """Write the duplicates still waiting (at the end of the file)."""
        while self.pending:
            _, _, dup, pid, dup_noise = heapq.heappop(self.pending)
            self._write(dup, pid, dup_noise)

    def _write(self, row: list[str], person_id: str, noise: str) -> None:
        self.rows += 1
        self.writer.writerow(row)
        self.truth.append(f"{self.key}{self.rows},{person_id},{noise}")


class _Generator:
    """One run. Holds the random streams, precomputed tables, open writers and tallies."""

    def __init__(self, config: SynthConfig, out_dir: Path) -> None:
        self.config = config
        self.out_dir = out_dir
        self.rates = config.rates
        self.noise = config.noise
        self.directory: OrgDirectory = config.directory
        self.rng = random.Random(f"{config.seed}:population")
        self.bank: NameBank = name_bank()
        self.ids = IdFactory(random.Random(f"{config.seed}:ids"))
        self.counts: dict[str, Counter[str]] = {
            k: Counter()
            for k in (
                "category",
                "school_situation",
                "registry_status",
                "placement_mode",
                "dropout_reason",
                "disability_type",
                "age",
                "noise",
                "student_number_kind",
                "xueji_status",
                "deferral",
            )
        }
        self._tally: Counter[tuple[str, str, str, int]] = Counter()
        """(categories, situation, status, age) → children; split into ``counts`` at the end."""
        self.periods = config.periods
        self.latest = self.periods[-1]
        self.person_seq = 0
        district_direct = [s for s in self.directory.schools() if self.directory.is_district_direct(s.code)]
        self.special_school = next(s.code for s in district_direct if s.school_type == "special_education")
        self.institution_class = next(
            (s.code for s in district_direct if s.school_type == "special_education" and "福利" in s.name_zh),
            self.special_school,
        )
        self.district_junior = next((s.code for s in district_direct if s.school_type == "junior"), None)
        self.district_primary = next((s.code for s in district_direct if s.school_type == "primary"), None)
        self._build_days()
        self._build_places()
        _check_plain((v.name_zh for v in self.directory.villages()), "village name")
        _check_plain((t.name_zh for t in self.directory.towns()), "town name")
        _check_plain(
            (*self.bank.surnames.items, *self.bank.boy.items, *self.bank.girl.items), "name character"
        )
        self._dropout = _Choice(_DROPOUT_REASONS)
        self._placement = _Choice(_PLACEMENT_MODES)
        self._disability = _Choice(list(_DISABILITY_WEIGHTS.items()))
        self._labels: dict[tuple[str, ...], str] = {}
        noise = config.noise
        self._rare_rates = (
            noise.homophone_name,
            noise.name_whitespace,
            noise.missing_id,
            noise.mistyped_id,
            noise.full_width_id,
            noise.id_spaces,
            noise.wrong_sex,
            noise.wrong_birth_date,
            noise.duplicate_row,
        )
        self._p_rare = 1.0 - math.prod(1.0 - rate for rate in self._rare_rates)
        first_weights = [
            (i, rate * math.prod(1.0 - r for r in self._rare_rates[:i]))
            for i, rate in enumerate(self._rare_rates)
        ]
        self._rare_first = _Choice(first_weights if self._p_rare > 0 else [(0, 1.0)])

    # ------------------------------------------------------------------ tables

    def _build_days(self) -> None:
        """Every possible birth date, weighted by cohort size, split into school-age and out-of-window."""
        as_of = self.config.as_of
        start = date(as_of.year - 16, as_of.month, as_of.day) + timedelta(days=1)
        end = date(as_of.year - 5, as_of.month, as_of.day)
        inside: list[tuple[_Day, float]] = []
        outside: list[tuple[_Day, float]] = []
        day = start
        while day <= end:
            age = as_of.year - day.year - ((as_of.month, as_of.day) < (day.month, day.day))
            entry = _Day(day, day.isoformat(), f"{day.year:04d}{day.month:02d}{day.day:02d}", age)
            weight = _BIRTH_YEAR_WEIGHTS.get(day.year, 1.0)
            (inside if 6 <= age <= 14 else outside).append((entry, weight))
            day += timedelta(days=1)
        self._days_inside = _Choice(inside)
        self._days_outside = _Choice(outside)

    def _build_places(self) -> None:
        """Precompute per village: address forms and the schools its children attend."""
        d = self.directory
        prefix = "".join(str(p) for p in d.district.get("address_prefixes", ()))
        county = str(d.district.get("name_zh", ""))
        self.places: list[_Place] = []
        for town in d.towns():
            abbr = town.aliases[-1] if town.aliases else town.name_zh
            schools = d.schools(within=town.code)
            central = next(
                (s.code for s in schools if s.school_type == "primary" and s.code.endswith("001")), ""
            )
            junior = next((s.code for s in schools if s.school_type == "junior"), "")
            nine_year = next((s.code for s in schools if s.school_type == "nine_year"), None)
            for village in d.villages(town.code):
                own = village.primary_school or central
                prim: list[tuple[str, float]] = [(own, 80), (central, 12)]
                if nine_year:
                    prim.append((nine_year, 5))
                if self.district_primary:
                    prim.append((self.district_primary, 3))
                jun: list[tuple[str, float]] = [(junior, 75), (nine_year or junior, 10)]
                if self.district_junior:
                    jun.append((self.district_junior, 15))
                stem = village.name_zh.removesuffix("社区").removesuffix("村")
                abbreviated = (abbr + village.name_zh,) + ((abbr + stem,) if len(stem) >= 2 else ())
                self.places.append(
                    _Place(
                        village=village,
                        town_name=town.name_zh,
                        town_abbr=abbr,
                        full=prefix + town.name_zh + village.name_zh,
                        county=county + town.name_zh + village.name_zh,
                        town_level=town.name_zh + village.name_zh,
                        abbreviated=abbreviated,
                        is_community=village.name_zh.endswith("社区"),
                        primary=_Choice(prim),
                        junior=_Choice(jun),
                        central_primary=central,
                    )
                )

    def _allocate(self) -> list[int]:
        """Children per place: town shares, villages varied ±50 %, rounded by largest remainder."""
        town_share = TOWN_CHILD_SHARES
        per_town = Counter(p.village.town for p in self.places)
        weights = [
            town_share.get(p.village.town, 0.08) / per_town[p.village.town] * self.rng.uniform(0.5, 1.5)
            for p in self.places
        ]
        total = sum(weights)
        exact = [self.config.children * w / total for w in weights]
        counts = [int(x) for x in exact]
        short = self.config.children - sum(counts)
        by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
        for i in by_remainder[:short]:
            counts[i] += 1
        return counts

    # ------------------------------------------------------------------ people

    def _new_family(self, place: _Place) -> _Family:
        """A household in ``place``: migrant or local, where it lives, its categories and guardian."""
        rand = self.rng.random
        r = self.rates
        fam = _Family()
        fam.place = place
        fam.surname = self.bank.surname(self.rng)
        if place.is_community:
            building, unit = int(rand() * 30) + 1, int(rand() * 4) + 1
            house = f"{building}号楼{unit}单元{int(rand() * 6) + 1}0{int(rand() * 4) + 1}室"
        else:
            house = f"{int(rand() * 180) + 1}号"
        cats: list[str] = []
        if rand() < r.migrant:
            code, origin = MIGRANT_ORIGINS[self.rng.randrange(len(MIGRANT_ORIGINS))]
            fam.id_address = code
            fam.hukou_address = f"{origin}{self.rng.choice('东西南北')}关村{self.rng.randint(1, 99)}号"
            fam.current_address = place.full + house
            fam.mobility = "local"
            cats.append("migrant")
        else:
            x = rand()
            fam.id_address = (
                DISTRICT_CODE
                if x < 0.97
                else (NEIGHBOUR_CODES[int(rand() * 5)] if x < 0.998 else RETIRED_CODES[0])
            )
            fam.hukou_address = place.full + house
            m = rand()
            if m < r.enrolled_elsewhere:
                fam.mobility = "away"
                fam.current_address = self.rng.choice(OUTSIDE_PLACES) + f"{self.rng.randint(1, 300)}号"
            elif m < r.enrolled_elsewhere + r.hukou_only:
                fam.mobility = "hukou_only"
                fam.current_address = self.rng.choice(("", "", "不详", "外出"))
            elif m < r.enrolled_elsewhere + r.hukou_only + r.abroad:
                fam.mobility = "abroad"
                fam.current_address = self.rng.choice(ABROAD_PLACES)
            else:
                fam.mobility = "local"
                fam.current_address = fam.hukou_address
            cats.append("resident")
            poor = rand() < r.registered_poor
            if poor:
                cats.append("registered_poor")
            if rand() < (0.25 if poor else r.low_income / (1 - r.registered_poor) * 0.5):
                cats.append("low_income")
            orphan = rand() < r.orphan
            if fam.mobility == "local" and rand() < r.left_behind and not orphan:
                cats.append("left_behind")
            if orphan:
                cats.append("orphan")
            if rand() < (0.6 if orphan else r.extreme_poverty * 0.4):
                cats.append("extreme_poverty")
            if rand() < r.prisoner_child:
                cats.append("prisoner_child")
        fam.categories = tuple(cats)
        # Guardian: a parent usually; grandparents for left-behind children and orphans.
        grand = "left_behind" in cats or "orphan" in cats
        g = rand()
        if grand:
            paternal = g < 0.7
            guardian_sex = "M" if rand() < 0.45 else "F"
            same = paternal and guardian_sex == "M"
        else:
            guardian_sex = "M" if g < 0.6 else "F"
            same = guardian_sex == "M"
        g_surname = fam.surname if same else self.bank.surname(self.rng)
        fam.guardian_name = g_surname + self.bank.given(self.rng, guardian_sex, adult=True)
        fam.guardian_phone = phone(rand)
        return fam

    def _person_id(self) -> str:
        """The next surrogate person id (P00000001, ...)."""
        self.person_seq += 1
        return f"P{self.person_seq:08d}"

    # ------------------------------------------------------------------ run

    def run(self) -> Manifest:
        """Open every output file, generate the district into them and write the manifest."""
        out = self.out_dir
        for sub in ("truth", "students", *(f"feeds/{p}" for p in self.periods)):
            (out / sub).mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            writers: list[_RowWriter] = []

            def open_csv(rel: str, header: Sequence[str], encoding: str = "utf-8") -> _RowWriter:
                """Truth files: UTF-8, LF. Exports as departments send them: CRLF, BOM unless GBK."""
                export = not rel.startswith("truth/")
                bom = encoding == "utf-8-sig"
                fh = stack.enter_context(
                    (out / rel).open("w", encoding="utf-8" if bom else encoding, newline="")
                )
                writer = _RowWriter(fh, "\r\n" if export else "\n", bom=bom)
                writer.writerow(header)
                writers.append(writer)
                return writer

            self.children_csv = open_csv("truth/children.csv", CHILDREN_HEADER)
            feed_truth = open_csv("truth/feed_rows.csv", FEED_ROWS_HEADER)
            self.feeds: dict[tuple[str, str], _FeedWriter] = {}
            for period in self.periods:
                for dept in DEPARTMENTS:
                    fh = open_csv(f"feeds/{period}/{dept}.csv", FEED_HEADER, FEED_ENCODING[dept])
                    self.feeds[period, dept] = _FeedWriter(period, dept, fh, feed_truth, self.config.seed)
            self.xueji = open_csv("students/xueji.csv", XUEJI_HEADER, "utf-8-sig")
            self.xueji_truth = open_csv("truth/xueji_rows.csv", XUEJI_ROWS_HEADER)
            self.xueji_rows = 0
            self.deferrals = open_csv("deferrals.csv", DEFERRALS_HEADER)
            self.children_rows = 0
            self.deferral_rows = 0

            sibling = self.rates.sibling
            rand = self.rng.random
            done = 0
            for place, n in zip(self.places, self._allocate(), strict=True):
                family: _Family | None = None
                for _ in range(n):
                    if family is None or family.children >= 3 or rand() >= sibling:
                        family = self._new_family(place)
                    family.children += 1
                    self._child(family)
                    done += 1
                    if not done & 1023:
                        for writer in writers:
                            writer.flush()
            for feed in self.feeds.values():
                feed.flush()
            for writer in writers:
                writer.flush()

        for (cats, situation, status, age), n in self._tally.items():
            for c in cats.split(";"):
                self.counts["category"][c] += n
            self.counts["school_situation"][situation or "n/a"] += n
            self.counts["registry_status"][status] += n
            self.counts["age"][str(age)] += n
        files = {
            "truth/children.csv": self.children_rows,
            "truth/feed_rows.csv": sum(f.rows for f in self.feeds.values()),
            "truth/xueji_rows.csv": self.xueji_rows,
            "students/xueji.csv": self.xueji_rows,
            "deferrals.csv": self.deferral_rows,
        }
        for (period, dept), feed in self.feeds.items():
            files[f"feeds/{period}/{dept}.csv"] = feed.rows
        manifest = Manifest(
            version=GENERATOR_VERSION,
            seed=self.config.seed,
            config=self.config.to_dict(),
            files=files,
            counts={k: {str(kk): vv for kk, vv in v.items()} for k, v in self.counts.items()},
        )
        manifest.write(out / "manifest.json")
        return manifest

    def _child(self, fam: _Family) -> None:
        """Create one child of ``fam`` and write everything about it: truth, feeds, 学籍, deferral."""
        rng = self.rng
        rand = rng.random
        r = self.rates
        place = fam.place
        person_id = self._person_id()
        sex = "M" if rand() < 0.53 else "F"
        day: _Day = (self._days_outside if rand() < r.out_of_window else self._days_inside).draw(rand())
        name = fam.surname + self.bank.given(rng, sex)
        id_number = self.ids.make(fam.id_address, day.ymd, sex)
        categories = list(fam.categories)
        disability_type = ""
        disability_grade = ""
        if rand() < r.disabled:
            categories.append("disabled")
            disability_type = self._disability.draw(rand())
            disability_grade = str(1 + min(int(rand() * 4), 3))
        migrant = "migrant" in categories

        # Registry status and school situation.
        x = rand()
        if migrant:
            status = "active"
        elif x < r.deceased:
            status = "deceased"
        elif x < r.deceased + r.moved_out:
            status = "moved_out"
        elif x < r.deceased + r.moved_out + r.missing:
            status = "missing"
        else:
            status = "active"
        situation, school_code, placement, reason, grade = self._situation(fam, day, status, categories)
        xueji_status = self._xueji_status(situation, status, grade)
        xueji_school = school_code
        if xueji_status is None and situation == "not_in_school":
            school_code = ""  # never had a local 学籍: no school owns the case yet
        elif xueji_status is not None and not xueji_school:
            xueji_school = self._school(fam, grade)  # moved out or deceased: the record left behind
        current_address = fam.current_address
        if status == "moved_out" and fam.mobility == "local":
            current_address = rng.choice(OUTSIDE_PLACES) + f"{rng.randint(1, 300)}号"

        village = place.village
        hukou_town = "" if migrant else village.town
        hukou_village = "" if migrant else village.code
        row = [
            person_id,
            name,
            id_number,
            sex,
            day.iso,
            hukou_town,
            hukou_village,
            fam.hukou_address,
            current_address,
            fam.guardian_name,
            fam.guardian_phone,
            ";".join(categories),
            disability_type,
            disability_grade,
            status,
            situation,
            school_code,
            placement,
            reason,
            "",
        ]
        self.children_csv.writerow(row)
        self.children_rows += 1
        self._tally[
            categories[0] if len(categories) == 1 else ";".join(categories), situation, status, day.age
        ] += 1
        if placement:
            self.counts["placement_mode"][placement] += 1
        if reason:
            self.counts["dropout_reason"][reason] += 1
        if disability_type:
            self.counts["disability_type"][disability_type] += 1

        person = _Person(
            person_id,
            name,
            len(fam.surname),
            id_number,
            sex,
            day,
            current_address,
            categories,
            disability_type,
            disability_grade,
            fam,
        )
        self._feeds_for(person, status, migrant)
        if xueji_status is not None:
            self._xueji(person, xueji_status, xueji_school, grade)
        if situation in ("deferred", "exempted"):
            self._deferral(person, situation, "disabled" in categories)

        # A duplicate household registration of the same child: another record, another ID number.
        if not migrant and status == "active" and rand() < r.duplicate_hukou:
            self._duplicate(person, row)

    def _situation(
        self, fam: _Family, day: _Day, status: str, categories: list[str]
    ) -> tuple[str, str, str, str, int]:
        """(school_situation, school_code, placement_mode, dropout_reason, grade) for one child."""
        rand = self.rng.random
        r = self.rates
        age = day.age
        grade = min(max(age - 5, 1), 9)
        g = rand()
        if g < 0.04 and grade > 1:
            grade -= 1
        elif g > 0.99 and grade < 9:
            grade += 1
        if status == "deceased":
            return "", "", "", "", grade if rand() < 0.3 else 0
        if status == "moved_out":
            return "enrolled_elsewhere", "", "", "", grade if rand() < 0.5 else 0
        if status == "missing":
            return "not_in_school", self._school(fam, grade), "", "whereabouts_unknown", grade
        if fam.mobility == "away":
            return "enrolled_elsewhere", "", "", "", grade
        if fam.mobility == "hukou_only":
            return "hukou_only", "", "", "", grade
        if fam.mobility == "abroad":
            return "abroad", "", "", "", grade
        if age < 6:
            if rand() < 0.3:
                return "enrolled_local", self._school(fam, 1), "", "", 1
            return "", "", "", "", 0
        if age > 14:
            if rand() < 0.5:
                return "enrolled_local", self._school(fam, 9), "", "", 9
            return "", "", "", "", 0
        if "disabled" in categories:
            d = rand()
            if d < 0.55:
                return "enrolled_local", self._school(fam, grade), "regular_class", "", grade
            if d < 0.85:
                mode = self._placement.draw(rand())
                if mode == "institution_class":
                    code = self.institution_class
                elif mode == "home_delivery" and rand() < 0.5:
                    code = fam.place.central_primary
                else:
                    code = self.special_school
                return "placed", code, mode, "", grade
            if d < 0.92:
                return "exempted", "", "", "", grade
            if d < 0.95:
                return "deferred", "", "", "", grade
            reason = "disability" if rand() < 0.7 else ("illness" if rand() < 0.66 else "guardian_refusal")
            return "not_in_school", self._school(fam, grade), "", reason, grade
        factor = 0.4 if age <= 9 else (0.8 if age <= 11 else 2.0)
        x = rand()
        p_out = r.not_in_school * factor
        if x < p_out:
            return (
                "not_in_school",
                self._school(fam, grade),
                "",
                self._dropout_reason(fam, age, categories),
                grade,
            )
        x -= p_out
        if age == 6 and x < r.deferred * 9:
            return "deferred", "", "", "", grade
        x -= r.deferred * 9 if age == 6 else 0
        if x < r.exempted * 0.5:
            return "exempted", "", "", "", grade
        x -= r.exempted * 0.5
        if x < r.enrolled_without_xueji:
            return "enrolled_without_xueji", self._school(fam, grade), "", "", grade
        return "enrolled_local", self._school(fam, grade), "", "", grade

    def _dropout_reason(self, fam: _Family, age: int, categories: list[str]) -> str:
        """A plausible dropout reason: work and marriage only from 13, 无人监管 only if left behind."""
        for _ in range(10):
            reason = str(self._dropout.draw(self.rng.random()))
            if reason == "working" and age < 13:
                continue
            if reason == "early_marriage" and age < 13:
                continue
            if reason == "unsupervised" and "left_behind" not in categories:
                continue
            if reason == "family_economic" and len(categories) == 1 and self.rng.random() < 0.5:
                continue
            return reason
        return "learning_weariness"

    def _school(self, fam: _Family, grade: int) -> str:
        """A school for a child of ``fam`` in ``grade``: usually the village's primary or town's junior."""
        choice = fam.place.primary if grade <= 6 else fam.place.junior
        return str(choice.draw(self.rng.random()))

    # ------------------------------------------------------------------ outputs

    def _feeds_for(self, p: _Person, status: str, migrant: bool) -> None:
        """Put ``p`` into the feeds of every department and period that would list the child.

        Police list every registered child (most migrants too, from residence permits); children who
        died or moved out are gone from the latest police list except for stale rows. The other
        departments list their category, each missing a few eligible children per period.
        """
        r = self.rates
        rand = self.rng.random
        cats = p.categories
        gone = status in ("deceased", "moved_out")
        police_ok = not migrant or rand() < 0.7
        stale = rand() < r.stale_police_rows
        for period in self.periods:
            latest = period == self.latest
            if police_ok and not (gone and latest and not stale):
                self._feed_row(self.feeds[period, "police"], p, ("migrant",) if migrant else ("resident",))
            if gone and latest:
                continue
            if "registered_poor" in cats and rand() < r.department_coverage:
                poverty_cats = tuple(c for c in ("registered_poor", "low_income") if c in cats)
                self._feed_row(self.feeds[period, "poverty"], p, poverty_cats)
            if "disabled" in cats and rand() < r.department_coverage:
                self._feed_row(self.feeds[period, "dpf"], p, ("disabled",))
            civil = tuple(c for c in CIVIL_CATEGORIES if c in cats)
            if civil and rand() < r.department_coverage:
                self._feed_row(self.feeds[period, "civil"], p, civil)

    def _draw_rare(self, rand: Callable[[], float]) -> list[bool]:
        """Independent draws of the rare noise kinds, conditioned on at least one occurring.

        Picks the first kind that occurs (by its exact conditional probability), then draws the later
        kinds independently. Together with the gate ``rand() < self._p_rare`` (the chance that any
        occurs) this equals one independent draw per kind, at one random number for the ~90 % clean rows.
        """
        rates = self._rare_rates
        first: int = self._rare_first.draw(rand())
        return [i == first or (i > first and rand() < rate) for i, rate in enumerate(rates)]

    def _feed_row(self, feed: _FeedWriter, p: _Person, cats: tuple[str, ...]) -> None:
        """Render one person as a row of ``feed``'s department, with that feed's noise."""
        rng = feed.rng
        rand = rng.random
        n = self.noise
        dept = feed.dept
        kinds: list[str] = []
        if rand() < self._p_rare:
            homophone, whitespace, missing, mistyped, fullwidth, spaces, bad_sex, bad_birth, dup = (
                self._draw_rare(rand)
            )
        else:
            homophone = whitespace = missing = mistyped = fullwidth = spaces = bad_sex = bad_birth = dup = (
                False
            )

        name = p.name
        if homophone:
            variant = self.bank.homophone_variant(name, p.surname_len, rng)
            if variant != name:
                name = variant
                kinds.append("homophone_name")
        if whitespace:
            name = nz.name_with_whitespace(name, p.surname_len, rng)
            kinds.append("name_whitespace")

        id_number = p.id_number
        if missing:
            id_number = rng.choice(nz.MISSING_ID_VALUES)
            kinds.append("missing_id")
        else:
            if mistyped:
                if rand() < 0.6:
                    id_number = nz.typo_digit(id_number, rng)
                    kinds.append("typo_id")
                else:
                    id_number = nz.transpose_digits(id_number, rng)
                    kinds.append("transposed_id")
            if id_number[-1] == "X" and rand() < n.lowercase_x:
                id_number = id_number[:-1] + "x"
                kinds.append("lowercase_x")
            if fullwidth:
                id_number = nz.full_width(id_number)
                kinds.append("full_width_id")
            if spaces:
                id_number = nz.spaced_id(id_number, rng)
                kinds.append("id_spaces")

        sex = p.sex
        if bad_sex:
            sex = "F" if sex == "M" else "M"
            kinds.append("wrong_sex")
        born = p.day.born
        shifted = bad_birth
        if shifted:
            born = nz.wrong_birth_date(born)
            kinds.append("wrong_birth_date")
        style = feed.date_style.draw(rand())
        birth = p.day.iso if style == "iso" and not shifted else nz.format_date(born, style)

        fam = p.family
        place = fam.place
        if "migrant" in p.categories:
            hukou = fam.hukou_address
        elif rand() < n.abbreviated_address:
            hukou = place.abbreviated[rng.randrange(len(place.abbreviated))]
            if rand() < 0.5:
                hukou += fam.hukou_address[len(place.full) :]
            kinds.append("abbreviated_address")
        else:
            address_style = feed.address_style.draw(rand())
            base = (
                place.full
                if address_style == "full"
                else (place.county if address_style == "county" else place.town_level)
            )
            hukou = base + fam.hukou_address[len(place.full) :]
        current = p.current_address

        phone_number = fam.guardian_phone
        if rand() < n.missing_phone:
            phone_number = ""
            kinds.append("missing_phone")
        elif rand() < 0.01:
            phone_number = nz.formatted_phone(phone_number, rng)

        label = self._labels.get(cats)
        if label is None:
            label = self._labels[cats] = "、".join(CATEGORY_LABELS[c] for c in cats)
        dis_type = dis_grade = ""
        if dept == "dpf" and p.disability_type:
            dis_type = DISABILITY_TYPES[p.disability_type]
            g = int(p.disability_grade)
            s = rand()
            dis_grade = GRADE_LABELS[g] if s < 0.85 else (f"{g}级" if s < 0.95 else str(g))
        row = [
            name,
            id_number,
            "男" if sex == "M" else "女",
            birth,
            hukou,
            current,
            fam.guardian_name,
            phone_number,
            label,
            dis_type,
            dis_grade,
        ]
        noise = ";".join(kinds)
        for k in kinds:
            self.counts["noise"][k] += 1
        feed.add(row, p.person_id, noise)
        if dup:
            self.counts["noise"]["duplicate_row"] += 1
            feed.schedule_duplicate(row, p.person_id, f"{noise};duplicate_row" if noise else "duplicate_row")

    def _xueji_status(self, situation: str, status: str, grade: int) -> str | None:
        """The child's local 学籍 status, or None when the local export has no record of the child.

        Dropouts keep their record (mostly ``dropped_out``, some still ``enrolled``: hidden dropouts),
        a fifth never had one; children who moved out or died may leave a record behind.
        """
        rand = self.rng.random
        if situation == "not_in_school":
            x = rand()
            return None if x < 0.2 else ("dropped_out" if x < 0.7 else "enrolled")
        if status == "moved_out":
            return "transferred_out" if grade else None
        if status == "deceased":
            return "deceased" if grade else None
        if situation in ("enrolled_local", "placed"):
            return "suspended" if rand() < 0.003 else "enrolled"
        return None

    def _xueji(self, p: _Person, xstatus: str, school_code: str, grade: int) -> None:
        """A 学籍 row for a child with a local student record (and record the mapping in the truth)."""
        rand = self.rng.random
        k = rand()
        if k < 0.012:
            number, id_number, kind = self.ids.j_number(p.day.ymd, p.id_number), "", "J"
        elif k < 0.015:
            number, kind = self.ids.l_number(p.day.ymd), "L"
            id_number = p.id_number if rand() < 0.5 else ""
        else:
            number, id_number, kind = "G" + p.id_number, p.id_number, "G"
        name = p.name
        if rand() < self.noise.xueji_homophone_name:
            name = self.bank.homophone_variant(name, p.surname_len, self.rng)
        self.xueji.writerow(
            (
                number,
                id_number,
                name,
                "男" if p.sex == "M" else "女",
                p.day.iso,
                school_code,
                str(grade),
                xstatus,
            )
        )
        self.xueji_rows += 1
        self.xueji_truth.append(f"{self.xueji_rows},{p.person_id}")
        self.counts["student_number_kind"][kind] += 1
        self.counts["xueji_status"][xstatus] += 1

    def _deferral(self, p: _Person, kind: str, disabled: bool) -> None:
        """The parents' written deferral/exemption application, filed early September."""
        reason = "disability" if disabled else "illness"
        if reason == "disability":
            evidence = "残疾人证" if self.rng.random() < 0.6 else "区残疾儿童入学鉴定意见"
        else:
            evidence = self.rng.choice(("二级以上医院诊断证明", "县级医院诊断证明", "住院病历"))
        applied = date(self.config.as_of.year, 9, self.rng.randint(1, 10)).isoformat()
        served_by = p.family.place.village.served_by
        self.deferrals.writerow(
            (
                p.person_id,
                "deferral" if kind == "deferred" else "exemption",
                reason,
                evidence,
                applied,
                served_by,
            )
        )
        self.deferral_rows += 1
        self.counts["deferral"][f"{kind}:{reason}"] += 1

    def _duplicate(self, p: _Person, original: list[str]) -> None:
        """An extra hukou record of ``p`` (重复户籍): new ID number, same name, birth date and family."""
        rng = self.rng
        code = p.family.id_address if rng.random() < 0.7 else NEIGHBOUR_CODES[rng.randrange(5)]
        dup_id = self.ids.make(code, p.day.ymd, p.sex)
        dup = _Person(
            self._person_id(),
            p.name,
            p.surname_len,
            dup_id,
            p.sex,
            p.day,
            p.current_address,
            p.categories,
            p.disability_type,
            p.disability_grade,
            p.family,
        )
        row = list(original)
        row[0], row[2] = dup.person_id, dup_id
        row[14], row[15], row[16], row[17], row[18], row[19] = "duplicate", "", "", "", "", p.person_id
        self.children_csv.writerow(row)
        self.children_rows += 1
        self.counts["registry_status"]["duplicate"] += 1
        for period in self.periods:
            self._feed_row(self.feeds[period, "police"], dup, ("resident",))


@dataclass(slots=True)
class _Person:
    """What the output writers need about one generated child."""

    person_id: str
    name: str
    surname_len: int
    id_number: str
    sex: str
    day: _Day
    current_address: str
    categories: list[str]
    disability_type: str
    disability_grade: str
    family: _Family


def generate_district(config: SynthConfig, out_dir: Path) -> Manifest:
    """Generate one synthetic district into ``out_dir`` (created if needed) and return its manifest.

    Writes ``truth/children.csv``, ``truth/feed_rows.csv``, ``truth/xueji_rows.csv``,
    ``feeds/<period>/{police,poverty,dpf,civil}.csv`` (civil in GBK, the others UTF-8 with BOM),
    ``students/xueji.csv``, ``deferrals.csv`` and ``manifest.json``. Deterministic: the same config gives
    the same bytes. Memory does not grow with ``config.children``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Generator(config, out_dir).run()
