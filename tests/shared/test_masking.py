"""Masked forms of ID numbers, names, phone numbers and addresses."""

import pytest

from baoxue.pii.masking import mask_address, mask_id_number, mask_name, mask_phone


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("370406201908151234", "370406********1234"),
        ("37040620190815123X", "370406********123X"),
        ("37040620190815123x", "370406********123X"),
        (" 370406 2019 0815 123X ", "370406********123X"),
        ("３７０４０６２０１９０８１５１２３Ｘ", "370406********123X"),
    ],
)
def test_id_number_keeps_first_six_and_last_four(raw, masked):
    assert mask_id_number(raw) == masked


@pytest.mark.parametrize(
    "raw",
    [
        "370406190815123",
        "3704062019081512",
        "3704062019081512345",
        "37040620190815X234",
        "ABCDEFGHIJKLMNOPQR",
    ],
)
def test_anything_not_shaped_like_an_id_number_is_masked_completely(raw):
    masked = mask_id_number(raw)
    assert set(masked) == {"*"}
    assert len(masked) == len(raw)


def test_empty_id_number():
    assert mask_id_number("") == ""


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("王小明", "王**"),
        ("欧阳娜娜", "欧阳**"),
        ("司马光", "司马*"),
        ("诸葛亮", "诸葛*"),
        ("上官婉儿", "上官**"),
        ("司马", "司*"),  # too short to be compound surname + given name
        ("阿依古丽·买买提", "阿***·***"),
        (" 李四 ", "李*"),
        ("李", "*"),
        ("", ""),
        ("John Smith", "J*** *****"),
    ],
)
def test_name_keeps_only_the_surname(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "138****5678"),
        ("008613812345678", "138****5678"),
        ("１３８１２３４５６７８", "138****5678"),
        ("0632-3312345", "*******2345"),  # landline: last four only
        ("(0632)3312345", "*******2345"),
        ("12345678901", "*******8901"),  # not a mobile prefix
        ("12345", "*2345"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("山东省枣庄市市中区光明路街道建设路12号3单元", "山东省枣庄市市中区光明路街道***"),
        ("山东省枣庄市山亭区西集镇东庄村18号", "山东省枣庄市山亭区西集镇***"),
        ("山东省枣庄市山亭区水泉镇", "山东省枣庄市山亭区水泉镇***"),
        ("某县某某乡某村", "某县某某乡***"),
        ("光明路街道幸福镇", "光明路街道***"),  # the first marker wins
        ("江苏省镇江市京口区正东路街道", "江苏省镇***"),  # over-masking beats leaking
        ("枣庄市市中区建设路12号", "***"),  # no town-level marker: nothing is shown
        ("", ""),
    ],
)
def test_address_is_kept_to_town_level(address, masked):
    assert mask_address(address) == masked
