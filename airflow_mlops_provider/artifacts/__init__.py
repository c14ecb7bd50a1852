"""The artifact layer: serializers, the object store, manifests and references.

Nothing in this package knows about Airflow's UI; the XCom backend, the CLI and the views build on it.
"""

from __future__ import annotations
