"""The casework service's code lists, served at ``/v1/code-lists`` with English and Chinese labels."""

from baoxue.dropout_reasons import DROPOUT_REASONS
from baoxue.service import CodeList

CASE_STATES: CodeList = {
    "suspected": ("Suspected dropout", "疑似辍学"),
    "confirmed": ("Confirmed dropout", "确认辍学"),
    "persuading": ("Persuasion in progress", "劝返中"),
    "returned": ("Returned to school", "已返校"),
    "placed": ("Placed (special education)", "已安置"),
    "escalated": ("Escalated to the town", "已提请镇街"),
    "closed": ("Closed (销号)", "已销号"),
}

PERSUASION_FORMS: CodeList = {
    "home_visit": ("Home visit", "上门家访"),
    "phone": ("Phone call", "电话劝返"),
    "town_meeting": ("Meeting with the town", "镇街约谈"),
    "village_committee": ("With the village committee", "村委会协助"),
}

PERSUASION_OUTCOMES: CodeList = {
    "agreed_to_return": ("Agreed to return", "同意返校"),
    "considering": ("Considering", "考虑中"),
    "refused": ("Refused", "拒绝"),
    "not_reached": ("Family not reached", "未见到家人"),
}

CLOSURE_REASONS: CodeList = {
    "returned": ("Back in school, attendance confirmed", "已返校且到校核实"),
    "placed": ("Placed in a suitable form of education", "已妥善安置"),
    "excluded": ("Excluded: deceased or moved out", "死亡或迁出，不再统计"),
    "unfounded": ("Signal unfounded: the child is in school", "经核实在校，非辍学"),
}

PLACEMENT_MODES: CodeList = {
    "regular_class": ("Regular class", "随班就读"),
    "special_school": ("Special school", "特殊教育学校"),
    "home_delivery": ("Home-delivered teaching", "送教上门"),
    "remote": ("Remote education", "远程教育"),
    "institution_class": ("Class in a welfare or rehabilitation institution", "福利/康复机构教学班"),
}

VISIT_FORMS: CodeList = {
    "home_visit": ("Home visit", "入户家访"),
    "phone": ("Phone visit", "电话家访"),
    "video": ("Video call", "视频家访"),
    "school_meeting": ("Parents at school", "到校面谈"),
}

CHILD_CATEGORIES: CodeList = {
    "registered_poor": ("Registered poor (建档立卡)", "建档立卡"),
    "disabled": ("Disabled", "残疾"),
    "left_behind": ("Left behind", "留守"),
    "orphan": ("Orphan", "孤儿"),
    "low_income": ("Minimum living allowance (低保)", "低保"),
    "extreme_poverty": ("Extreme poverty support (特困供养)", "特困供养"),
    "prisoner_child": ("Child of a prisoner", "服刑人员未成年子女"),
    "migrant": ("Migrant", "流动"),
    "economic_hardship": ("Economic hardship", "家庭经济困难"),
    "learning_difficulty": ("Learning difficulty (school-assessed)", "学困"),
}

VISIT_FLAGS: CodeList = {
    "date_outside_semester": ("Visit date outside the semester", "家访日期不在学期内"),
    "photo_reused": ("Photo already used for another student", "照片与其他学生家访重复"),
}

CODE_LISTS: dict[str, CodeList] = {
    "case_state": CASE_STATES,
    "dropout_reason": DROPOUT_REASONS,
    "persuasion_form": PERSUASION_FORMS,
    "persuasion_outcome": PERSUASION_OUTCOMES,
    "closure_reason": CLOSURE_REASONS,
    "placement_mode": PLACEMENT_MODES,
    "visit_form": VISIT_FORMS,
    "child_category": CHILD_CATEGORIES,
    "visit_flag": VISIT_FLAGS,
}
