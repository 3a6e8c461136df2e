"""A record's code fingerprint moves with the code that decides results and with nothing else: comments,
docstrings and formatting of a Python module leave it alone; any change to its statements, and any byte of a
non-Python file, move it."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import provenance

MODULE = '''"""Module docstring."""

SCALE = 2  # a comment


def step(x):
    """Docstring."""
    return x * SCALE
'''

SAME_CODE = {
    "comment edited": MODULE.replace("# a comment", "# another comment"),
    "docstrings edited": MODULE.replace("Module docstring.", "Says more.").replace('"""Docstring."""', '"""Why."""'),
    "docstring removed": MODULE.replace('    """Docstring."""\n', ""),
    "reformatted": MODULE.replace("return x * SCALE", "return (x\n            * SCALE)"),
}
OTHER_CODE = {
    "constant changed": MODULE.replace("SCALE = 2", "SCALE = 3"),
    "operator changed": MODULE.replace("x * SCALE", "x + SCALE"),
    "statement added": MODULE.replace("    return", "    x = -x\n    return"),
    "string constant changed": MODULE + 'NAME = "a"\n',
}


def _fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    return provenance.code_fingerprint(("*.py", "*.yaml"))


@pytest.mark.parametrize("edit", sorted(SAME_CODE))
def test_comments_docstrings_and_formatting_leave_the_fingerprint(tmp_path, monkeypatch, edit: str) -> None:
    before = _fingerprint(tmp_path, monkeypatch, {"module.py": MODULE})
    assert _fingerprint(tmp_path, monkeypatch, {"module.py": SAME_CODE[edit]}) == before


@pytest.mark.parametrize("edit", sorted(OTHER_CODE))
def test_every_change_to_the_code_moves_the_fingerprint(tmp_path, monkeypatch, edit: str) -> None:
    before = _fingerprint(tmp_path, monkeypatch, {"module.py": MODULE})
    assert _fingerprint(tmp_path, monkeypatch, {"module.py": OTHER_CODE[edit]}) != before


def test_a_new_file_or_a_changed_config_byte_moves_the_fingerprint(tmp_path, monkeypatch) -> None:
    base = _fingerprint(tmp_path, monkeypatch, {"module.py": MODULE, "task.yaml": "lr: 0.1  # tuned\n"})
    assert _fingerprint(tmp_path, monkeypatch, {"task.yaml": "lr: 0.1  # retuned\n"}) != base
    assert _fingerprint(tmp_path, monkeypatch, {"extra.py": "X = 1\n"}) != base


def test_a_module_that_does_not_parse_is_hashed_by_its_bytes(tmp_path, monkeypatch) -> None:
    broken = _fingerprint(tmp_path, monkeypatch, {"module.py": "def broken(:\n"})
    assert _fingerprint(tmp_path, monkeypatch, {"module.py": "def broken(:\n# edited\n"}) != broken
