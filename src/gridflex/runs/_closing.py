"""`with` support for the run files' writers: leaving the block closes them."""

import abc
from types import TracebackType
from typing import TypeVar


_Resource = TypeVar("_Resource", bound="ClosedOnExit")


class ClosedOnExit(abc.ABC):
    """A resource that `with` closes at the end of its block, error or not."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the resource."""

    def __enter__(self: _Resource) -> _Resource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
