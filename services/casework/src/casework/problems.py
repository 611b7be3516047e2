"""The casework service's problem codes → (English, Chinese) titles."""

PROBLEM_TITLES: dict[str, tuple[str, str]] = {
    "transition_not_allowed": ("This state change is not allowed", "不允许的案件状态变更"),
    "transition_field_required": ("The state change needs more information", "状态变更缺少必要信息"),
    "closure_reason_not_allowed": ("This closure reason is not allowed here", "该销号理由不适用于当前状态"),
    "no_active_student_record": ("No active student record", "学籍系统中无在读学籍"),
    "attendance_not_confirmed": ("Attendance not confirmed long enough", "到校天数未达销号要求"),
    "not_excluded": ("The registry does not exclude the child", "户籍信息未显示死亡或迁出"),
    "case_already_open": ("The child already has an open case", "该儿童已有未销号案件"),
    "case_closed": ("The case is closed", "案件已销号"),
    "case_not_confirmed": ("The case is not a confirmed dropout", "案件尚未确认辍学"),
    "case_not_in_persuasion": ("The case is not being persuaded", "案件不在劝返阶段"),
    "case_not_returned": ("The student has not returned", "学生尚未返校"),
    "attendance_before_return": ("Attendance before the return date", "到校期间早于返校日期"),
    "report_already_filed": ("The report was already filed", "辍学报告已报送"),
    "school_required": ("The school is required", "需填写学校"),
    "invalid_id_number": ("Invalid ID number", "身份证号码无效"),
    "bad_semester": ("Invalid semester", "学期格式不正确"),
    "visit_id_conflict": ("This visit id holds a different visit", "家访编号已被其他记录使用"),
    "student_not_on_roster": ("The student is not on the school's roster", "该学生不在本校名册中"),
    "census_already_completed": ("The census was already completed", "特殊学生摸排已完成"),
    "plan_subject_missing": ("The plan names no student or family", "帮扶方案未指明学生或家庭"),
}
