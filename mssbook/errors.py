"""Errors whose message tells the user what went wrong and how to fix it.

The CLI prints these without a traceback; anything else is a bug in mssbook.
"""


class MSSBookError(Exception):
    """Base class: the message names the file or setting at fault and the fix."""


class MissingDependencyError(MSSBookError, ImportError):
    """An optional package or program (torchaudio, ffmpeg, matplotlib, ...) is not usable."""


class InvalidValueError(MSSBookError, ValueError):
    """A number, array or option the user passed is out of range or of the wrong kind."""


class AudioFileError(MSSBookError, OSError):
    """An audio file is missing, empty, corrupt or of an unsupported format."""


class DatasetError(MSSBookError, ValueError):
    """A dataset root has the wrong layout, or holds no tracks."""


class OutputExistsError(MSSBookError, FileExistsError):
    """Writing would overwrite a file the user already has."""
