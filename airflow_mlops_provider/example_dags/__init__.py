"""Example DAGs shipped with the provider (point ``[core] dags_folder`` here to try them)."""
