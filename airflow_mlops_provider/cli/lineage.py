"""``airflow mlops lineage``: the upstream tree of an artifact, read from manifests only.

An ``@ml.task`` records, in the manifest of everything it returns, its code hash, params and the
input artifacts it read (URI, SHA-256, producer). Following those inputs' manifests recursively
gives the tree of tasks and artifacts an artifact was derived from, without the metadata DB.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from airflow_mlops_provider.cli._common import command, describe_producer, print_json, resolve_target
from airflow_mlops_provider.exceptions import ArtifactError, ArtifactNotFoundError, ArtifactStoreError

if TYPE_CHECKING:
    import argparse

    from airflow_mlops_provider.artifacts.manager import ArtifactManager

DEFAULT_DEPTH = 25


def _execution_summary(execution: dict[str, Any] | None) -> dict[str, Any] | None:
    if not execution:
        return None
    keep = ("operator", "code_hash", "params", "duration_seconds", "peak_rss_mb", "memory_warning")
    return {k: execution[k] for k in keep if k in execution}


def build_lineage(
    manager: ArtifactManager,
    uri: str,
    *,
    depth: int = DEFAULT_DEPTH,
    recorded: dict[str, Any] | None = None,
    _seen: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The lineage tree of the artifact at ``uri`` as nested dicts.

    Each node: ``uri``, ``status`` (``ok``, ``missing``, ``outside_root``, ``cycle`` or
    ``depth_limit``), ``summary``, ``type``, ``sha256``, ``created_at``, ``producer``,
    ``execution`` (code hash, params, duration, peak memory of an ``@ml.task``; ``None`` for other
    tasks, which record no inputs) and ``inputs`` (child nodes). ``sha256_matches`` says whether the
    input that was read had the hash of the object stored now.

    :param manager: the artifact manager (its store is where manifests are read).
    :param uri: the data object (or manifest) URI of the artifact.
    :param depth: how many levels of inputs to follow.
    :param recorded: the input record that led here (from the downstream manifest), if any.
    :raises ArtifactStoreError: the store cannot be reached.
    """
    from airflow_mlops_provider.notebook import read_manifest

    node: dict[str, Any] = {"uri": uri, "status": "ok", "inputs": []}
    if recorded:
        node.update(
            {
                "summary": None,
                "type": recorded.get("type"),
                "sha256": recorded.get("sha256"),
                "producer": recorded.get("producer"),
            }
        )
    if uri in _seen:
        node["status"] = "cycle"
        return node
    try:
        manifest = read_manifest(uri, manager=manager)
    except ArtifactStoreError:
        raise
    except ArtifactNotFoundError as err:
        node.update(status="missing", error=str(err))
        return node
    except ArtifactError as err:
        node.update(status="outside_root", error=str(err))
        return node
    reference = manifest.reference
    node.update(
        {
            "uri": reference.uri,
            "summary": reference.summary,
            "type": reference.type,
            "sha256": reference.sha256,
            "created_at": manifest.created_at,
            "producer": asdict(reference.producer),
            "execution": _execution_summary(manifest.execution),
        }
    )
    if recorded and recorded.get("sha256") and recorded["sha256"] != reference.sha256:
        node["sha256_matches"] = False
    elif recorded:
        node["sha256_matches"] = True
    inputs = (manifest.execution or {}).get("inputs") or []
    children = node.pop("inputs")  # keep "inputs" last, for people reading the JSON
    if inputs and depth <= 0:
        node["status"] = "depth_limit"
    else:
        for item in inputs:
            if item.get("uri"):
                seen = _seen | {reference.uri}
                children.append(
                    build_lineage(manager, item["uri"], depth=depth - 1, recorded=item, _seen=seen)
                )
    node["inputs"] = children
    return node


def _producer_line(producer: dict[str, Any] | None) -> str:
    return describe_producer(producer) if producer else "unknown producer"


def render_lineage(node: dict[str, Any], prefix: str = "", last: bool = True, root: bool = True) -> list[str]:
    """An indented ASCII tree, one block per artifact."""
    head = "" if root else prefix + ("`-- " if last else "|-- ")
    body = "" if root else prefix + ("    " if last else "|   ")
    lines = [f"{head}{node['uri']}"]
    status = node["status"]
    if status in ("missing", "outside_root"):
        lines.append(f"{body}  [{status.replace('_', ' ')}] {node.get('error', '')}".rstrip())
        if node.get("producer"):
            lines.append(f"{body}  produced by: {_producer_line(node.get('producer'))}")
        return lines
    if status == "cycle":
        lines.append(f"{body}  [cycle: already shown above]")
        return lines
    if node.get("summary"):
        lines.append(f"{body}  {node['summary']}")
    lines.append(f"{body}  produced by: {_producer_line(node.get('producer'))}")
    execution = node.get("execution")
    if execution:
        facts = [f"code sha256 {str(execution.get('code_hash', '?'))[:16]}"]
        if "duration_seconds" in execution:
            facts.append(f"{execution['duration_seconds']} s")
        if "peak_rss_mb" in execution:
            facts.append(f"peak {execution['peak_rss_mb']} MiB")
        lines.append(f"{body}  {execution.get('operator', 'task')}: {', '.join(facts)}")
        params = execution.get("params")
        if params:
            lines.append(f"{body}  params: {json.dumps(params, sort_keys=True, default=str)}")
    else:
        lines.append(f"{body}  no execution record (not an @ml.task): inputs unknown")
    if node.get("sha256_matches") is False:
        lines.append(f"{body}  WARNING: the stored object's sha256 differs from the one that was read")
    if status == "depth_limit":
        lines.append(f"{body}  ... inputs not shown (--depth reached)")
        return lines
    children = node.get("inputs") or []
    if execution and not children:
        lines.append(f"{body}  inputs: none")
    for index, child in enumerate(children):
        lines += render_lineage(child, body + "  ", index == len(children) - 1, root=False)
    return lines


@command
def lineage(args: argparse.Namespace) -> None:
    """``airflow mlops lineage (URI | DAG_ID RUN_ID TASK_ID)``."""
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    manager = ArtifactManager.configured()
    uri, entry = resolve_target(args)
    if uri is not None:
        uris = [uri]
    else:
        assert entry is not None
        uris = [ref.uri for ref in entry.references]
        if not uris:
            raise ArtifactError(
                f"The XCom of {entry.describe()} is stored inline in the XCom row, not as an artifact, so "
                "it has no manifest and no recorded lineage. Its task's own record is the 'mlops.task' "
                "XCom (for @ml.task tasks)."
            )
    trees = [build_lineage(manager, u, depth=args.depth) for u in uris]
    if trees[0]["status"] in ("missing", "outside_root") and len(trees) == 1:
        error = trees[0].get("error", "")
        raise (ArtifactNotFoundError if trees[0]["status"] == "missing" else ArtifactError)(error)
    if args.output == "json":
        print_json(trees[0] if len(trees) == 1 else trees)
        return
    for index, tree in enumerate(trees):
        if index:
            print()
        print("\n".join(render_lineage(tree)))
