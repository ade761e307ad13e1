"""Errors and warnings of the local backend: missing weights, GPU memory, the transformers setup.

Each message says what to do next (which command downloads the weights, what frees memory,
which install command fixes the setup). All are ``JanusError``s, so one handler catches every
backend's failures.
"""

from __future__ import annotations

from ..errors import JanusError, JanusWarning

__all__ = [
    "LocalSetupError",
    "ModelNotDownloadedError",
    "ModelNotFoundError",
    "OutOfMemoryError",
    "SlowDeviceWarning",
    "UnsupportedTransformersError",
]


class LocalSetupError(JanusError, ImportError):
    """torch or transformers is missing: the local backend needs the ``local`` extra."""


class UnsupportedTransformersError(LocalSetupError):
    """The installed transformers has no (or a too old) Janus implementation."""

    def __init__(self, message: str, *, installed: str | None = None):
        super().__init__(message)
        self.installed = installed


class ModelNotFoundError(JanusError):
    """The model is neither a local folder nor a Janus checkpoint transformers can load."""

    def __init__(self, message: str, *, model: str):
        super().__init__(message)
        self.model = model


class ModelNotDownloadedError(ModelNotFoundError):
    """The model id is not in the Hugging Face cache and downloading was not allowed."""


class OutOfMemoryError(JanusError, MemoryError):
    """The accelerator ran out of memory while loading or generating."""


class SlowDeviceWarning(JanusWarning):
    """The model runs on the CPU, where Janus-Pro-7B takes minutes per answer."""
