"""``airflow mlops ...``: artifact listing, previews, downloads, lineage and garbage collection.

Registered through the ``cli`` key of ``get_provider_info()``; :mod:`.definition` is imported by
every ``airflow`` invocation, so it stays light and loads the command modules lazily.
"""

from __future__ import annotations
