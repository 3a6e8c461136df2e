"""The README's flora examples run as written (a usage example that drifts from the API is a bug)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def library_examples() -> list[str]:
    text = README.read_text()
    section = text.split("## The `flora` library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_has_the_two_examples():
    assert len(library_examples()) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = library_examples()[index].replace("/tmp/convnext-flora", str(tmp_path / "convnext-flora"))
    exec(compile(code, f"README example {index}", "exec"), {})
