"""The enrollment service's code lists, served at ``/v1/code-lists`` with English and Chinese labels."""

from baoxue.service import CodeList

CODE_LISTS: dict[str, CodeList] = {}
