"""Row-level reason codes of feed validation: severity and messages (English, Chinese).

``error`` rejects the row; ``warning`` keeps it (and is listed in the error report); ``review`` keeps
it and opens a review item. Messages name fields and rules, never values.
"""

from __future__ import annotations

from typing import Literal

from baoxue.pii.citizen_id import IdReason

Severity = Literal["error", "warning", "review"]

REASONS: dict[str, tuple[Severity, str, str]] = {
    # ID number (GB 11643). A row without a usable ID number is kept and goes to record linkage.
    IdReason.MISSING: (
        "warning",
        "ID number missing; matched by name, birth date and address",
        "身份证号缺失，按姓名、出生日期、地址匹配",
    ),
    IdReason.LEGACY_15_DIGIT: (
        "warning",
        "15-digit legacy ID number; matched without it",
        "15位旧身份证号，按其他信息匹配",
    ),
    "id_number_stored_as_number": (
        "error",
        "ID number was stored as a number, so a spreadsheet kept only its first 15 digits; format the "
        "ID number column as text and type the number again",
        "身份证号以数值格式保存，表格软件只保留前15位数字；请将身份证号列设置为文本格式后重新录入",
    ),
    IdReason.BAD_LENGTH: ("warning", "ID number has the wrong length", "身份证号位数错误"),
    IdReason.BAD_CHARACTERS: ("warning", "ID number contains invalid characters", "身份证号含非法字符"),
    IdReason.BAD_CHECK_CHARACTER: (
        "warning",
        "ID number check character is wrong (typing error?)",
        "身份证号校验码错误（可能录入有误）",
    ),
    IdReason.BAD_BIRTH_DATE: ("warning", "ID number contains no real birth date", "身份证号中的出生日期无效"),
    IdReason.BIRTH_DATE_MISMATCH: (
        "review",
        "birth date disagrees with the ID number",
        "出生日期与身份证号不一致",
    ),
    IdReason.SEX_MISMATCH: ("review", "sex disagrees with the ID number", "性别与身份证号不一致"),
    IdReason.ADDRESS_CODE_UNKNOWN: (
        "review",
        "ID number address code is in no list of division codes",
        "身份证号地址码不在行政区划代码表中",
    ),
    IdReason.ADDRESS_CODE_NOT_IN_USE: (
        "review",
        "ID number address code was not a division code in the birth year",
        "身份证号地址码在出生年份无效",
    ),
    # Required fields and formats.
    "name_missing": ("error", "name is required", "姓名必填"),
    "name_invalid": ("error", "name contains characters a name cannot have", "姓名含有非法字符"),
    "sex_missing": ("error", "sex is required when the ID number is not usable", "身份证号不可用时性别必填"),
    "sex_invalid": ("error", "sex must be 男/女 (M/F)", "性别应为男/女"),
    "birth_date_missing": (
        "error",
        "birth date is required when the ID number is not usable",
        "身份证号不可用时出生日期必填",
    ),
    "birth_date_invalid": ("error", "birth date is not a real date", "出生日期不是有效日期"),
    "age_out_of_window": (
        "error",
        "not of compulsory school age (6-14) on the cut-off date",
        "截止日不在6-14周岁义务教育年龄段",
    ),
    "hukou_address_missing": ("error", "hukou address is required", "户籍地址必填"),
    "address_unmatched": (
        "review",
        "hukou address matches no town of the district; flagged for review",
        "户籍地址未匹配到本区镇街，待核查",
    ),
    "address_village_unmatched": (
        "warning",
        "hukou address names a town but no known village",
        "户籍地址仅匹配到镇街，未匹配到村居",
    ),
    "phone_invalid": ("warning", "guardian phone is not a valid phone number", "监护人电话格式不正确"),
    "category_unknown": ("warning", "unknown category label", "类别无法识别"),
    "category_not_for_department": (
        "warning",
        "category is not one this department asserts",
        "该部门不报送此类别",
    ),
    "category_missing": (
        "warning",
        "no category given; the department's default applies",
        "未填类别，按部门默认类别",
    ),
    "disability_type_unknown": ("warning", "unknown disability type", "残疾类别无法识别"),
    "disability_grade_invalid": (
        "warning",
        "disability grade must be 1-4 (一级-四级)",
        "残疾等级应为一级至四级",
    ),
    "duplicate_in_batch": (
        "error",
        "the same person is in an accepted row earlier in this batch",
        "同一批次中此前已有该人员的有效行",
    ),
    "field_too_long": ("error", "a cell is longer than allowed", "单元格内容超长"),
    "cell_formula": ("error", "a cell starts like a spreadsheet formula", "单元格内容疑似公式"),
    "cell_control_character": (
        "error",
        "a cell holds a control character (such as NUL)",
        "单元格含有控制字符（如NUL）",
    ),
    "cell_invalid_text": (
        "error",
        "a cell holds text that is not valid Unicode (an unpaired surrogate)",
        "单元格含有无效的Unicode字符（不成对的代理项）",
    ),
    "row_malformed": ("error", "the row has the wrong number of cells", "该行列数不正确"),
    "id_collision": (
        "review",
        "ID number already belongs to a different person; matched by other data",
        "身份证号与他人冲突，按其他信息匹配",
    ),
}


def severity(code: str) -> Severity:
    return REASONS[code][0]


def message(code: str, language: str = "en") -> str:
    _, en, zh = REASONS[code]
    return zh if language == "zh" else en
