"""The notify service's code lists, served at ``/v1/code-lists`` with English and Chinese labels."""

from baoxue.service import CodeList
from notify.documents.templates import TEMPLATES
from notify.escalation.ladder import LADDER

VERIFICATION_OUTCOMES: CodeList = {
    "enrolled_local": ("Enrolled locally", "本地在读"),
    "enrolled_elsewhere": ("Enrolled elsewhere", "外地就读"),
    "deferred": ("Deferred", "缓学"),
    "exempted": ("Exempted", "免学"),
    "placed": ("Placed (special education)", "特殊教育安置"),
    "deceased": ("Deceased", "死亡"),
    "moved_out": ("Moved out", "迁出"),
    "duplicate_hukou": ("Duplicate hukou", "重复户籍"),
    "hukou_only": ("Registered, nobody lives there", "空挂户"),
    "id_error": ("ID number error", "身份证号错误"),
    "abroad": ("Abroad", "出国"),
    "enrolled_without_xueji": ("In school without 学籍", "在读无学籍"),
    "not_in_school": ("Not in school", "未入学（辍学）"),
    "unreachable": ("Unreachable", "无法联系"),
}

CODE_LISTS: dict[str, CodeList] = {
    "escalation_level": {lv.code: (lv.label_en, lv.label_zh) for lv in LADDER},
    "document_kind": {t.kind: (t.label_en, t.title) for t in TEMPLATES.values()},
    "deadline_kind": {
        "feed": ("Department feed", "部门数据报送"),
        "verification": ("Enrollment verification", "入学核查"),
        "verification_task": ("Verification task", "核查任务"),
        "case_report": ("Dropout case report", "辍学情况报告"),
        "census": ("Special-needs census", "特殊学生摸底排查"),
        "bulletin": ("District bulletin", "全区通报"),
        "referral_receipt": ("Receipt of a referral", "移送事项回执"),
        "deferral_return": ("Return after a deferral or exemption", "缓学（免学）期满返校核实"),
        "visit_quota": ("Home visits of the semester", "学期家访覆盖"),
        "dropout_report": ("Dropout report (end of March / October)", "辍学情况汇总上报（3月底、10月底）"),
        **{f"escalation_{lv.code}": (lv.label_en, lv.label_zh) for lv in LADDER},
    },
    "deadline_status": {
        "open": ("Open", "未到期"),
        "met": ("Met", "已完成"),
        "lapsed": ("Lapsed", "已逾期"),
        "cancelled": ("Cancelled", "已取消"),
    },
    "verification_outcome": VERIFICATION_OUTCOMES,
    "referral_kind": {
        "child_labour": ("Employer of a child (to HRSS)", "招用童工（人社局）"),
        "venue": (
            "Internet café / entertainment venue admitting pupils",
            "网吧、娱乐场所接纳学生（市场监管、文旅）",
        ),
        "hardship_family": ("Hardship family (to civil affairs)", "困难家庭救助（民政局）"),
        "disabled_unenrolled": (
            "Unenrolled disabled child (to justice and DPF)",
            "未入学残疾儿童（司法局、残联）",
        ),
        "prisoner_child": ("Child of a prisoner (to justice and DPF)", "服刑人员未成年子女（司法局、残联）"),
        "hukou_cleanup": ("Hukou clean-up result", "户籍清理结果"),
        "deferral_return": (
            "Deferral or exemption ended: confirm the child is back (to the hukou school district)",
            "缓学（免学）期满返校核实（户籍所在地学区）",
        ),
    },
    "provider_kind": {
        "guoxueban": ("Classics class", "国学班"),
        "dujingban": ("Scripture-reading class", "读经班"),
        "sishu": ("Private tutoring school", "私塾"),
        "other": ("Other", "其他"),
    },
}
