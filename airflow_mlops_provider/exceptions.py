"""Errors raised by the artifact layer.

Every message names what the user needs to find the problem (task, key, type, URI, connection)
and says what to do about it.
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class of every error raised by airflow-mlops-provider's artifact layer."""


class UnsupportedTypeError(ArtifactError, TypeError):
    """No registered serializer accepts the value (and pickling is disabled or failed)."""


class ArtifactStoreError(ArtifactError):
    """The artifact store could not be reached, or refused the operation."""


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """An XCom row refers to an artifact whose object is gone from the store."""


class ArtifactIntegrityError(ArtifactError):
    """Stored bytes do not match the content hash or signature recorded when they were written."""


class PickleNotAllowedError(ArtifactError):
    """Pickle artifacts are disabled (``[mlops] allow_pickle = False``) or unsigned/tampered."""


class ArtifactLookupError(ArtifactError, LookupError):
    """The DAG, run, task, key or map index asked for has no XCom in the metadata DB.

    The message lists what does exist (DAG ids close to the one asked for, the newest runs, the
    task ids with XComs in the run, the keys of the task).
    """


class BucketNotFoundError(ArtifactStoreError):
    """The bucket of ``[mlops] artifact_root`` does not exist: the root (or the connection) is wrong,
    which no retry fixes, and no artifact in it was deleted one by one."""


class RefusedReferenceError(ArtifactError):
    """An XCom row refers to an artifact that is not its own DAG's (a forged or tampered reference):
    it is shown as refused and never loaded."""


class UncacheableInputError(TypeError):
    """A ``cache=True`` task takes an input no cache key can capture (a live object, Airflow's context,
    a value that was not read from an artifact): the message names the task and the parameter."""
