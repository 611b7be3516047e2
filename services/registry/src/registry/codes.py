"""The registry service's code lists, served at ``/v1/code-lists`` with English and Chinese labels."""

from baoxue.service import CodeList
from registry.feeds.columns import CATEGORIES, DEPARTMENTS, DISABILITY_TYPES
from registry.feeds.reasons import REASONS

CODE_LISTS: dict[str, CodeList] = {
    "child_category": CATEGORIES,
    "registry_status": {
        "active": ("Active", "正常"),
        "deceased": ("Deceased", "死亡"),
        "moved_out": ("Moved out (hukou cancelled)", "迁出注销"),
        "duplicate": ("Duplicate registration (merged)", "重复户籍"),
        "missing": ("Missing", "失踪"),
    },
    "feed_department": {d: (en, zh) for d, (_, en, zh) in DEPARTMENTS.items()},
    "disability_type": DISABILITY_TYPES,
    "feed_reason": {code: (en, zh) for code, (_, en, zh) in REASONS.items()},
    "review_kind": {
        # A row reason of severity "review" opens an item of that code (registry.children.merge).
        **{code: (en, zh) for code, (severity, en, zh) in REASONS.items() if severity == "review"},
        "conflict": ("Conflicting values", "数据冲突"),
        "flag_lapsed": ("Category no longer asserted", "类别标识失效"),
        "address_unmatched": ("Address matches no town", "地址未匹配"),
        "link_candidate": ("Possible same child", "疑似同一儿童"),
        "id_collision": ("ID number used by a different person", "身份证号与他人冲突"),
    },
}
