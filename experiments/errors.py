"""Errors the runner turns into clear messages or failed run records."""

from __future__ import annotations

from collections.abc import Iterable


class MissingAssetsError(RuntimeError):
    """Weights or data a run needs are not on this machine; the message says how to get each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"cannot start: missing assets (nothing was trained)\n{lines}")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the step says where."""

    def __init__(self, step: int, loss: float) -> None:
        self.step = step
        super().__init__(f"non-finite training loss ({loss}) at step {step}")


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> ValueError:
    """The error for a name that is not in a registry, listing the valid ones."""
    return ValueError(f"unknown {kind} '{name}'; valid: {', '.join(sorted(valid))}")


class MissingSetupError(MissingAssetsError):
    """Something the set-up installs or builds is missing (a package, compiled ops, a weights file).

    One line, because it has one cause: what is missing and the command that puts it in place.
    """

    def __init__(self, missing: str, command: str) -> None:
        self.problems = [f"{missing}: run `{command}`"]
        self.command = command
        RuntimeError.__init__(self, f"cannot start: missing {missing}; run `{command}` (nothing was trained)")
