"""Made-up children for the registry tests: valid ID numbers and rows in the departments' CSV layout."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from baoxue.pii.citizen_id import check_character

DIANZI = "山东省枣庄市山亭区店子镇渠庄村5号"  # 店子镇 370406101, village 370406101201
SHANCHENG = "山东省枣庄市山亭区山城街道府前社区3号楼"  # 山城街道 370406001, community 370406001001
DIANZI_TOWN, SHANCHENG_TOWN = "370406101", "370406001"
DIANZI_SD, SHANCHENG_SD = "37040610101", "37040600101"


def make_id(birth: dt.date, seq: int, *, male: bool) -> str:
    body = f"370406{birth:%Y%m%d}{seq:02d}{(1 if male else 2) + 2 * (seq % 4)}"
    return body + check_character(body)


@dataclass(frozen=True)
class Kid:
    name: str
    birth: dt.date
    male: bool
    seq: int
    hukou: str = DIANZI
    guardian: str = "王建国"
    phone: str = "13800000001"
    category: str = "常住"
    id_number: str | None = None
    disability: str = ""
    grade: str = ""

    @property
    def id(self) -> str:
        return self.id_number if self.id_number is not None else make_id(self.birth, self.seq, male=self.male)

    def row(self, **over: str) -> str:
        cells = {
            "name": self.name,
            "id": self.id,
            "sex": "男" if self.male else "女",
            "birth": self.birth.isoformat(),
            "hukou": self.hukou,
            "current": self.hukou,
            "guardian": self.guardian,
            "phone": self.phone,
            "category": self.category,
            "disability": self.disability,
            "grade": self.grade,
        } | over
        return ",".join(cells.values())

    def but(self, **changes: object) -> Kid:
        return replace(self, **changes)  # type: ignore[arg-type]


WANG = Kid("王小明", dt.date(2016, 5, 2), True, 11)
LI = Kid("李梅", dt.date(2014, 3, 9), False, 12, hukou=SHANCHENG, guardian="李强", phone="13900000002")
ZHAO = Kid("赵子涵", dt.date(2015, 7, 20), False, 13, guardian="赵刚", phone="13700000003")


_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"


def distinct_rows(count: int, surname: str) -> list[str]:
    """``count`` different children (names, birth dates and ID numbers all different), as CSV rows."""
    return [
        Kid(
            name=surname + _GIVEN[i % 20] + _GIVEN[(i // 20) % 20],
            birth=dt.date(2014, 1, 1) + dt.timedelta(days=i),
            male=i % 2 == 0,
            seq=i % 100,
        ).row()
        for i in range(count)
    ]
