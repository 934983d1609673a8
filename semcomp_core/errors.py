"""Exception types of semcomp.

* :class:`BitstreamError` -- the one documented error for bad compressed data.
  Every parser and every ``decode`` raises it (and nothing else) on truncated,
  corrupt or malicious input. It subclasses :class:`ValueError`.
* :class:`ModelMismatchError` -- a BitstreamError raised when a well-formed
  container was made for other models than the receiver's (its label table is
  not the one the receiver's decoder was trained on).
* :class:`UsageError` -- bad user input (unknown codec, bad option value,
  unreadable image). The CLI turns it into a one-line message and exit code 2.
* :class:`RegistryError` -- a name registered twice or looked up but unknown.
"""


class SemcompError(Exception):
    """Base class of every error semcomp raises on purpose."""


class BitstreamError(SemcompError, ValueError):
    """Compressed data is truncated, corrupt, unsupported or implausible.

    The message names the problem (e.g. ``"CRC mismatch"``,
    ``"truncated: layer 1 needs 120 bytes, 17 left"``).
    """


class ModelMismatchError(BitstreamError):
    """The container is valid but made for a label table the receiver's decoder was not trained on."""


class UsageError(SemcompError, ValueError):
    """A user-supplied argument, option, file or name is invalid."""


class RegistryError(UsageError, KeyError):
    """A registry name is unknown or registered twice."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
