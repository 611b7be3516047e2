"""The departments' column headers, field names, category and disability labels."""

from __future__ import annotations

# Chinese header → field name. The order is the template's column order.
HEADERS: dict[str, str] = {
    "姓名": "name",
    "身份证号": "id_number",
    "性别": "sex",
    "出生日期": "birth_date",
    "户籍地址": "hukou_address",
    "现住址": "current_address",
    "监护人姓名": "guardian_name",
    "监护人电话": "guardian_phone",
    "类别": "categories",
    "残疾类别": "disability_type",
    "残疾等级": "disability_grade",
}
FIELDS: tuple[str, ...] = tuple(HEADERS.values())
REQUIRED_HEADERS = ("姓名", "身份证号", "性别", "出生日期", "户籍地址")
MAX_CELL = 200

DEPARTMENTS: dict[str, tuple[str, str, str]] = {
    # department → (role, English, Chinese)
    "police": ("dept_police", "Public security (household registration)", "区公安分局"),
    "poverty": ("dept_poverty", "Poverty alleviation office", "区扶贫办"),
    "dpf": ("dept_dpf", "Disabled persons' federation", "区残联"),
    "civil": ("dept_civil", "Civil affairs", "区民政局"),
}
DEPARTMENT_OF_ROLE = {role: dept for dept, (role, _, _) in DEPARTMENTS.items()}

CATEGORIES: dict[str, tuple[str, str]] = {
    "resident": ("Resident", "常住"),
    "registered_poor": ("Registered poor (建档立卡)", "建档立卡"),
    "disabled": ("Disabled", "残疾"),
    "left_behind": ("Left-behind", "留守"),
    "orphan": ("Orphan", "孤儿"),
    "low_income": ("Minimum living allowance (低保)", "低保"),
    "extreme_poverty": ("Extreme poverty support (特困)", "特困供养"),
    "prisoner_child": ("Child of a prisoner", "服刑人员未成年子女"),
    "migrant": ("Migrant", "流动"),
}
CATEGORY_BY_LABEL: dict[str, str] = (
    {zh: code for code, (_, zh) in CATEGORIES.items()}
    | {code: code for code in CATEGORIES}
    | {
        "特困": "extreme_poverty",
        "贫困": "registered_poor",
        "建档立卡贫困": "registered_poor",
        "服刑人员子女": "prisoner_child",
    }
)

DEPARTMENT_CATEGORIES: dict[str, frozenset[str]] = {
    "police": frozenset({"resident", "migrant"}),
    "poverty": frozenset({"registered_poor", "low_income"}),
    "dpf": frozenset({"disabled"}),
    "civil": frozenset({"orphan", "left_behind", "low_income", "extreme_poverty", "prisoner_child"}),
}
DEFAULT_CATEGORY = {"police": "resident", "poverty": "registered_poor", "dpf": "disabled", "civil": None}

DISABILITY_TYPES: dict[str, tuple[str, str]] = {
    "visual": ("Visual", "视力残疾"),
    "hearing": ("Hearing", "听力残疾"),
    "speech": ("Speech", "言语残疾"),
    "physical": ("Physical", "肢体残疾"),
    "intellectual": ("Intellectual", "智力残疾"),
    "mental": ("Mental", "精神残疾"),
    "multiple": ("Multiple", "多重残疾"),
}
DISABILITY_BY_LABEL: dict[str, str] = (
    {zh: c for c, (_, zh) in DISABILITY_TYPES.items()}
    | {zh[:-2]: c for c, (_, zh) in DISABILITY_TYPES.items()}
    | {c: c for c in DISABILITY_TYPES}
)
GRADE_BY_LABEL = {
    "一级": "1",
    "二级": "2",
    "三级": "3",
    "四级": "4",
    "1级": "1",
    "2级": "2",
    "3级": "3",
    "4级": "4",
} | {str(g): str(g) for g in range(1, 5)}
