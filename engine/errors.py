"""Typed errors meant for users.

Every error a person can cause (a bad file, an unknown column, an unsafe model)
is a :class:`ProbityError` subclass whose ``str()`` is one plain sentence naming
the file and the problem.  Anything else that escapes the engine is a bug.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ProbityError",
    "DataError",
    "RoleError",
    "ModelError",
    "IncompatibleModelError",
    "ModelInputError",
    "UnsafeModelError",
    "UntrustedModelError",
    "AnalysisError",
    "OutputExistsError",
    "Cancelled",
]


class ProbityError(Exception):
    """Base class of every error whose message is meant for a user.

    Parameters
    ----------
    message:
        One sentence, ending with a full stop, that names the problem.
    path:
        The file the problem is about, if any.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else Path(path)

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class DataError(ProbityError):
    """A data file cannot be read as a table, or its contents are unusable."""


class RoleError(ProbityError):
    """Column roles (target, features, sensitive attributes) do not fit the data."""


class ModelError(ProbityError):
    """A model file cannot be loaded or used."""


class IncompatibleModelError(ModelError):
    """The model was saved by a library version this installation cannot read."""


class ModelInputError(ModelError):
    """The data does not provide what the model needs, or the model output is unusable."""


class _TrustQuestionError(ModelError):
    """A model error that carries what a trust dialog shows: the file's hash and imports.

    Attributes
    ----------
    sha256: hex SHA-256 of the exact file the decision is about (``None`` if unknown).
    imports: what the file would import (pickle globals, or skops untrusted types).
    dangerous: the subset of ``imports`` able to run commands or code.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        sha256: str | None = None,
        imports: tuple[str, ...] = (),
        dangerous: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, path=path)
        self.sha256 = sha256
        self.imports = tuple(imports)
        self.dangerous = tuple(dangerous)


class UnsafeModelError(_TrustQuestionError):
    """The model file would import something able to run code; it is refused, always."""


class UntrustedModelError(_TrustQuestionError):
    """The model file needs an explicit, per-file trust decision before it is loaded."""


class AnalysisError(ProbityError):
    """An analysis cannot run with the given parameters on the given inputs."""


class OutputExistsError(ProbityError):
    """The output folder already holds files an export would overwrite, and overwriting was not confirmed.

    Attributes
    ----------
    existing: the files that exist, in the order they would be written.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, existing: tuple[Path, ...] = ()) -> None:
        super().__init__(message, path=path)
        self.existing = tuple(existing)


class Cancelled(Exception):
    """Raised inside a job when its cancel flag is set; never shown as an error."""
