"""Janus-Pro on your own GPU: ``LocalJanus``, a ``JanusBackend`` running it through transformers.

Importing this package imports neither torch nor transformers; creating a ``LocalJanus`` does
(install them with ``pip install 'janus-space[local]'``).
"""

from .backend import DEFAULT_LOCAL_MODEL, MAX_IMAGES_PER_GENERATION, LocalJanus
from .errors import (
    LocalSetupError,
    ModelNotDownloadedError,
    ModelNotFoundError,
    OutOfMemoryError,
    SlowDeviceWarning,
    UnsupportedTransformersError,
)

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "MAX_IMAGES_PER_GENERATION",
    "LocalJanus",
    "LocalSetupError",
    "ModelNotDownloadedError",
    "ModelNotFoundError",
    "OutOfMemoryError",
    "SlowDeviceWarning",
    "UnsupportedTransformersError",
]
