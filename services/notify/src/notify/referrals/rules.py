"""Who gets which referral, and what they are asked to do (山政办字〔2019〕49号, measures 8 and 10)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    kind: str
    to_roles: tuple[str, ...]
    required_action: str
    title_zh: str


RULES: dict[str, Rule] = {
    r.kind: r
    for r in (
        Rule("child_labour", ("hrss",), "investigate_employer", "招用童工线索移送"),
        Rule("venue", ("market", "culture"), "inspect_venue", "网吧、娱乐场所接纳中小学生线索移送"),
        Rule("hardship_family", ("dept_civil",), "assess_assistance", "困难家庭纳入救助"),
        Rule("disabled_unenrolled", ("justice", "dept_dpf"), "verify_and_place", "未入学残疾儿童核实"),
        Rule("prisoner_child", ("justice", "dept_dpf"), "verify_and_support", "服刑人员未成年子女核实"),
        # Addressed to the child's hukou school district (from the event), not to a role: to_roles is empty.
        Rule("deferral_return", (), "confirm_return", "缓学（免学）期满返校核实"),
        Rule(
            "hukou_cleanup",
            ("bureau", "dept_poverty", "dept_dpf", "dept_civil"),
            "update_records",
            "户籍清理结果通报",
        ),
    )
}

CASE_REASON_REFERRALS = {
    "working": "child_labour",
    "family_economic": "hardship_family",
    "disability": "disabled_unenrolled",
}
"""A confirmed case's reason that sends a referral by itself."""

OUTCOMES = (
    "returned",
    "action_taken",
    "no_violation_found",
    "assistance_granted",
    "records_updated",
    "placed",
    "not_applicable",
)
