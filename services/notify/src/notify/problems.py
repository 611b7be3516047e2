"""The notify service's problem codes → (English, Chinese) titles."""

PROBLEM_TITLES: dict[str, tuple[str, str]] = {
    "arrangement_invalid": ("The holiday arrangement is not valid", "节假日安排数据有误"),
    "arrangement_conflict": (
        "The year's arrangement differs from the loaded one",
        "与已加载的该年节假日安排不一致",
    ),
    "sweep_date_in_future": (
        "A sweep cannot run for a future date (outside simulation)",
        "非模拟模式下不能按未来日期执行时限检查",
    ),
    "document_kind_unknown": ("Unknown document kind", "未知的文书类型"),
    "document_kind_not_permitted": ("Your role does not issue this document", "无权签发此类文书"),
    "document_date_out_of_range": (
        "The document's date is in the future or too far back",
        "文书日期不能晚于今天，也不能早于允许补录的期限",
    ),
    "document_fields_missing": ("The document template needs more fields", "文书模板缺少必填内容"),
    "document_immutable": ("An issued document cannot be edited", "已签发文书不可修改"),
    "document_superseded": ("This document version has been corrected already", "该文书版本已被更正"),
    "not_the_issuer": ("Only the issuing organisation may do this", "仅签发单位可执行此操作"),
    "recipient_unknown": ("The recipient organisation is unknown", "收文单位不存在"),
    "organisation_unknown": ("The organisation is unknown", "单位不存在"),
    "escalation_resolved": ("The escalation is resolved", "督办已结束"),
    "ladder_at_top": ("The case is at the last level already", "已处于最高督办层级"),
    "not_the_acting_organisation": ("Another organisation acts at this level", "该层级应由其他单位处理"),
    "delivery_not_dead": ("Only dead letters can be replayed", "仅可重发失败投递"),
    "bulletin_published": ("The bulletin is published already", "通报已发布"),
    "provider_listed": ("The provider is already listed", "该机构已在黑名单中"),
    "provider_not_listed": ("The provider is not listed", "该机构不在黑名单中"),
    "not_the_listing_organisation": (
        "Only the listing organisation or the bureau may do this",
        "仅列入单位或教体局可执行此操作",
    ),
    "outside_jurisdiction": ("The organisation is outside your jurisdiction", "超出本单位管辖范围"),
    "referral_kind_unknown": ("Unknown referral kind", "未知的移送类型"),
    "referral_closed": ("The referral is closed already", "该移送事项已办结"),
    "phone_invalid": ("The phone number is not valid", "手机号码格式不正确"),
    "sms_gateway_unconfigured": ("No SMS gateway is configured", "未配置短信网关"),
    "email_address_invalid": ("The email address is not valid", "电子邮箱地址格式不正确"),
    "message_kind_unknown": ("Unknown message kind", "未知的消息类型"),
    "report_period_not_started": ("The report's period has not started yet", "报告统计期尚未开始"),
}
