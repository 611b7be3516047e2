"""Masking of personal data for responses, exports and screens (脱敏).

Every function fails closed: input it does not recognise is masked completely rather than partly, so a
typo in the data never reveals more than a well-formed value would.
"""

from __future__ import annotations

import re

from baoxue.pii.citizen_id import normalise_id_number

_MASK = "*"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_COUNTRY_PREFIXES = ("0086", "86")
_MIN_PHONE_DIGITS_TO_SHOW_ANY = 5

# Two-character surnames (复姓): for these the surname that stays visible is two characters long.
_COMPOUND_SURNAME_LIST = (
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 轩辕 令狐 钟离 闻人 澹台 "
    "公冶 宗政 濮阳 太叔 申屠 赫连 万俟 独孤 南宫 西门 百里 呼延 拓跋 端木 第五 仲孙 单于 亓官 司寇 "
    "鲜于 闾丘 东郭 左丘 梁丘 谷梁 羊舌 微生 公羊 公良 乐正 漆雕 壤驷 巫马 宰父 颛孙 太史 段干"
)
_COMPOUND_SURNAMES = frozenset(_COMPOUND_SURNAME_LIST.split())
# Separators inside names stay visible (e.g. 阿依古丽·买买提, Latin-script names with spaces).
_NAME_SEPARATORS = frozenset(" ·•・.")

# Town/township-level markers; the address is kept up to and including the first one.
_TOWN_MARKERS = ("街道", "镇", "乡")


def mask_id_number(id_number: str) -> str:
    """Return an 18-character ID number as first 6 + '********' + last 4, e.g. `370406********123X`.

    The value is normalised first; anything that is not shaped like an 18-character ID number comes
    back as one '*' per character.
    """
    normalised = normalise_id_number(id_number)
    if not _ID_SHAPE.fullmatch(normalised):
        return _MASK * len(normalised)
    return normalised[:6] + _MASK * 8 + normalised[-4:]


def mask_name(name: str) -> str:
    """Keep the surname and replace each other character with '*': 张三丰 → 张**, 欧阳娜娜 → 欧阳**.

    Compound surnames (复姓) keep two characters when the name is longer than two; a one-character name
    is masked completely. Separators such as '·' stay in place.
    """
    name = name.strip()
    if len(name) <= 1:
        return _MASK * len(name)
    visible = 2 if len(name) > 2 and name[:2] in _COMPOUND_SURNAMES else 1
    masked = (ch if ch in _NAME_SEPARATORS else _MASK for ch in name[visible:])
    return name[:visible] + "".join(masked)


def mask_phone(phone: str) -> str:
    """Mask a phone number: an 11-digit mainland mobile (optionally +86) becomes `138****5678`; any other
    number keeps only its last 4 digits, each other digit becoming '*'. Numbers of fewer than 5 digits are
    masked completely."""
    digits = "".join(ch for ch in normalise_id_number(phone) if ch.isdigit())
    for prefix in _MOBILE_COUNTRY_PREFIXES:
        if digits.startswith(prefix) and _MOBILE.fullmatch(digits[len(prefix) :]):
            digits = digits[len(prefix) :]
            break
    if _MOBILE.fullmatch(digits):
        return digits[:3] + _MASK * 4 + digits[-4:]
    if len(digits) < _MIN_PHONE_DIGITS_TO_SHOW_ANY:
        return _MASK * len(digits)
    return _MASK * (len(digits) - 4) + digits[-4:]


def mask_address(address: str) -> str:
    """Keep an address up to and including its town/township (the first 街道, 镇 or 乡) and append '***'.

    An address without such a marker is masked completely ('***'), since what it would show cannot be
    shown to be above town level.
    """
    address = address.strip()
    if not address:
        return ""
    ends = [address.find(marker) + len(marker) for marker in _TOWN_MARKERS if marker in address]
    if not ends:
        return _MASK * 3
    return address[: min(ends)] + _MASK * 3
