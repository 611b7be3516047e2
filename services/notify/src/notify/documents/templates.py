"""The document templates, in Chinese: each turns its fields into a title and paragraphs.

Stored content never holds a person's name: the salutation carries ``ADDRESSEE`` which rendering
replaces with the (decrypted, audited) addressee or a generic 家长 / masked name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from notify.documents.law import LAW_TITLE, articles

ADDRESSEE = "{{addressee}}"


@dataclass(frozen=True)
class Template:
    kind: str
    title: str
    label_en: str
    issuer_roles: frozenset[str]
    required: tuple[str, ...]
    build: Callable[[Mapping[str, str], str, str | None], list[str]]


def _parent_letter(f: Mapping[str, str], issuer: str, _recipient: str | None) -> list[str]:
    return [
        f"尊敬的{ADDRESSEE}：",
        "接受义务教育是每个适龄儿童、少年的权利，也是家长和监护人的法定义务。"
        f"经核查，您的子女（案件编号 {f['case_ref']}）目前未在校就读。我们真诚希望您配合学校，"
        "让孩子尽快返回校园，学校将为孩子返校后的学习和生活提供帮扶。",
        f"请您在收到本信后与{issuer}联系，共同商定孩子返校事宜。",
        f"{LAW_TITLE}规定：",
        *articles(5, 11),
        "请您阅读后在回执上签字，交回学校。",
    ]


def _correction_order(f: Mapping[str, str], issuer: str, _recipient: str | None) -> list[str]:
    return [
        f"{ADDRESSEE}：",
        f"经学校多次劝返，您的子女（案件编号 {f['case_ref']}）仍未返校接受义务教育。"
        f"依据{LAW_TITLE}第五十八条，现责令你于 {f['deadline']} 前送子女返校就读。",
        f"逾期仍不改正的，{issuer}将提请司法部门依法处理。",
        f"{LAW_TITLE}规定：",
        *articles(5, 58),
    ]


def _admission_notice(f: Mapping[str, str], issuer: str, _recipient: str | None) -> list[str]:
    return [
        f"{ADDRESSEE}：",
        f"您的子女已被{issuer}录取，请于 {f['report_date']} 到校报到，参加 {f['school_year']} 学年学习。",
        f"依法送适龄子女入学是父母和其他法定监护人的义务。{LAW_TITLE}规定：",
        *articles(5, 11, 14),
    ]


def _judicial_referral(f: Mapping[str, str], issuer: str, recipient: str | None) -> list[str]:
    return [
        f"{recipient or '区司法局'}：",
        f"我{issuer}于 {f['order_issued_on']} 依法对案件 {f['case_ref']} 的监护人发出限期改正通知书"
        f"（{f['order_number']}），限期至 {f['order_deadline']}。期满后，监护人仍未送子女返校。",
        f"依据{LAW_TITLE}第五十八条及山政办字〔2019〕49号文件，现提请贵局出具司法文书，依法督促监护人履行义务。",
        "请于收函后及时回执，并将处理结果反馈我单位。",
    ]


def _hukou_cleanup(f: Mapping[str, str], issuer: str, recipient: str | None) -> list[str]:
    return [
        f"{recipient or '各有关部门'}：",
        f"{issuer}已完成 {f['period']} 期户籍清理，涉及适龄儿童户籍状态变更 {f['total']} 条，其中："
        f"死亡 {f.get('deceased', '0')} 条，迁出注销 {f.get('moved_out', '0')} 条，"
        f"重复户籍 {f.get('duplicate', '0')} 条，失踪 {f.get('missing', '0')} 条。",
        "明细已推送至基础数据库。请贵单位据此更新本部门数据，并在系统中回执处理结果。",
    ]


TEMPLATES: dict[str, Template] = {
    t.kind: t
    for t in (
        Template(
            "parent_letter",
            "致家长的一封信",
            "Letter to parents",
            frozenset({"school", "bureau"}),
            ("case_ref",),
            _parent_letter,
        ),
        Template(
            "correction_order",
            "限期改正通知书",
            "Order to correct within a deadline",
            frozenset({"town", "bureau"}),
            ("case_ref", "deadline"),
            _correction_order,
        ),
        Template(
            "admission_notice",
            "入学通知书",
            "Admission notice (with the law's text)",
            frozenset({"school", "bureau"}),
            ("report_date", "school_year"),
            _admission_notice,
        ),
        Template(
            "judicial_referral",
            "提请出具司法文书函",
            "Judicial referral letter",
            frozenset({"town", "bureau"}),
            ("case_ref", "order_number", "order_issued_on", "order_deadline"),
            _judicial_referral,
        ),
        Template(
            "hukou_cleanup_notice",
            "户籍清理结果通知",
            "Hukou clean-up notice to departments",
            frozenset({"dept_police", "bureau"}),
            ("period", "total"),
            _hukou_cleanup,
        ),
    )
}
