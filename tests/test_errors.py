"""The exit-code table in tpcloud/errors.py stays level with the error classes."""

from __future__ import annotations

from tpcloud import errors


def _subclasses(cls: type) -> list[type]:
    return [cls] + [sub for direct in cls.__subclasses__() for sub in _subclasses(direct)]


def test_every_exit_code_has_a_meaning():
    codes = {cls.exit_code for cls in _subclasses(errors.TpcloudError)} | {0, 1, errors.EXIT_INTERRUPTED}
    assert codes <= errors.EXIT_CODES.keys(), sorted(codes - errors.EXIT_CODES.keys())


def test_the_table_is_in_code_order_and_says_something_for_each():
    assert list(errors.EXIT_CODES) == sorted(errors.EXIT_CODES)
    assert all(meaning.strip() for meaning in errors.EXIT_CODES.values())


def test_the_help_epilog_is_made_from_the_table():
    from tpcloud.cli import EXIT_CODES_HELP

    assert EXIT_CODES_HELP.startswith("Exit codes: 0 ok, 1 unexpected error, 2 bad usage or input, ")
    for code, meaning in errors.EXIT_CODES.items():
        assert f"{code} {meaning}" in EXIT_CODES_HELP


def test_the_readme_table_lists_every_exit_code():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Exit codes and errors", 1)[1].split("\n## ", 1)[0]
    listed = [int(line.split("|")[1]) for line in section.splitlines() if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    assert listed == list(errors.EXIT_CODES)
