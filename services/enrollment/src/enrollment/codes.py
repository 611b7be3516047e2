"""The enrollment service's code lists, served at ``/v1/code-lists`` with English and Chinese labels."""

from baoxue.dropout_reasons import DROPOUT_REASONS
from baoxue.service import CodeList

CODE_LISTS: dict[str, CodeList] = {
    "student_status": {
        "enrolled": ("Enrolled", "在读"),
        "suspended": ("Suspended", "休学"),
        "transferred_out": ("Transferred out", "转出"),
        "dropped_out": ("Dropped out (record kept)", "辍学"),
        "graduated": ("Graduated", "毕业"),
        "deceased": ("Deceased", "死亡"),
    },
    "verification_outcome": {
        "enrolled_local": ("Enrolled locally", "本地就读"),
        "enrolled_elsewhere": ("Enrolled elsewhere (confirmed)", "外地就读"),
        "deferred": ("Deferred", "缓学"),
        "exempted": ("Exempted", "免学"),
        "placed": ("Placed (special education)", "已安置"),
        "deceased": ("Deceased", "死亡"),
        "moved_out": ("Moved out", "迁出"),
        "duplicate_hukou": ("Duplicate hukou", "重复户籍"),
        "hukou_only": ("Hukou only, nobody lives there", "空挂户"),
        "id_error": ("ID error", "身份信息错误"),
        "abroad": ("Abroad", "出国"),
        "enrolled_without_xueji": ("In school without a record", "在读无学籍"),
        "not_in_school": ("Not in school", "未入学（疑似辍学）"),
        "unreachable": ("Unreachable", "无法联系"),
        "unaccounted": ("Not yet explained (task open)", "待核查"),
    },
    "placement_mode": {
        "regular_class": ("Regular class", "随班就读"),
        "special_school": ("Special school", "特殊教育学校"),
        "home_delivery": ("Home-delivered teaching", "送教上门"),
        "remote": ("Remote education", "远程教育"),
        "institution_class": ("Class in a welfare/rehabilitation institution", "福利/康复机构教学班"),
    },
    "dropout_signal": {
        "dropped_out_status": ("Record set to dropped out", "学籍状态为辍学"),
        "absence_four_weeks": ("Four weeks of unexcused absence", "无故旷课四周"),
        "suspension_expired": ("Suspension ended without resumption", "休学期满未复学"),
        "transfer_hanging": ("Transfer not completed in time", "转学超期未办结"),
        "vocational_unconfirmed": ("Vocational record not confirmed", "分流职校未确认学籍"),
        "vocational_lost": ("Lost by the vocational school", "职校报告流失"),
        "verification_not_in_school": ("Verification found the child out of school", "核查发现未入学"),
    },
    # The reasons a school may give for a status change: closed lists, because the reason is published in
    # StudentStatusChanged (no free text goes onto the event bus).
    "dropout_reason": DROPOUT_REASONS,  # domain.md's list, as casework's cases use it
    "suspension_reason": {  # domain.md has no list for 休学: this one is the service's own
        "illness": ("Illness or injury", "因病（伤）休学"),
        "disability": ("Treatment or rehabilitation of a disability", "残疾治疗或康复"),
        "family_circumstances": ("Family circumstances", "家庭原因"),
        "other": ("Other", "其他"),
    },
    "resumption_reason": {  # the service's own, like suspension_reason
        "resumed": ("Resumed (the default)", "复学"),
        "suspension_ended": ("Back after the suspension", "休学期满复学"),
        "persuaded_back": ("Back after persuasion (劝返)", "劝返复学"),
    },
    "application_kind": {
        "deferral": ("Deferral", "缓学（延缓入学）"),
        "exemption": ("Exemption", "免学（免于入学）"),
    },
    "campaign_kind": {
        "september_verification": ("September verification", "秋季入学核查"),
        "november_comparison": ("November district comparison", "十一月全区比对"),
    },
}
