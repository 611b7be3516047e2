"""The reason categories of a dropout (domain.md), one list for every service that names them: casework's
cases and reports, enrollment's dropout transitions (published in StudentStatusChanged, so closed: no
free text goes onto the event bus)."""

from typing import Literal, get_args

from baoxue.service import CodeList

DropoutReason = Literal[
    "learning_weariness",
    "family_economic",
    "illness",
    "disability",
    "working",
    "early_marriage",
    "guardian_refusal",
    "illegal_schooling",
    "unsupervised",
    "whereabouts_unknown",
    "other",
]

DROPOUT_REASONS: CodeList = {
    "learning_weariness": ("Weary of learning", "厌学"),
    "family_economic": ("Family economic hardship", "家庭经济困难"),
    "illness": ("Illness", "疾病"),
    "disability": ("Disability", "残疾"),
    "working": ("Working away from home", "外出打工"),
    "early_marriage": ("Early marriage", "早婚"),
    "guardian_refusal": ("Guardians refuse to send the child", "家长不送"),
    "illegal_schooling": ("Illegal substitute schooling", "读经班/私塾/国学班/在家自学"),
    "unsupervised": ("Left behind without supervision", "留守无人监管"),
    "whereabouts_unknown": ("Whereabouts unknown", "下落不明"),
    "other": ("Other", "其他"),
}

assert tuple(DROPOUT_REASONS) == get_args(DropoutReason), "the code list and the type name the same codes"
