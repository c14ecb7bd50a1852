"""A task's code as it depends on its DAG file: the function, what it uses there, its ML settings.

A task's behaviour depends on more than its function body: module-level constants (a ``FEATURES``
list), helper functions and imports of the DAG file, and the settings of its ``@ml`` decorator.
:class:`SourceIndex` finds a function in a file's source by qualified name and follows, with
``ast``, the names the function uses to where the file binds them:

* **Dependencies**: every free name of the function (its body and default values; annotations
  are left out) that the file binds in an enclosing function or at module level (an assignment,
  an import, a ``def`` or a ``class``), followed transitively (a helper's own names, the names in
  a constant's value). Names used by its decorator's arguments count too, except imports (the
  ``Regression`` in ``regression=Regression(...)`` is part of the setting). Builtins and names
  the file does not bind are not dependencies. Names bound by ``for``/``with``/``except``
  targets, and changes made in place (``FEATURES.append(...)``, ``CONFIG["k"] = ...``), are not
  followed: the DAG file's own hash, recorded with each run, still shows those changes.
* **Code hash**: SHA-256 of the function's source from ``def`` to the end of its body
  (decorators excluded, its own name replaced by ``_``, so a pure rename keeps the hash), followed
  by each dependency's source in name order. A function without dependencies hashes exactly as
  snapshots of version 1 did. ``function_hash`` is the hash of the function alone.
* **Settings**: for ``@ml.task``/``@ml.check``/``@ml.metric`` tasks, the keyword arguments in
  :data:`SETTING_NAMES` of the function's decorator calls, as normalised source text
  (``ast.unparse``). Settings passed elsewhere (``.override(...)``, a decorator built at run
  time) are not seen here; the DAG file hash is.

The same computation runs on the scheduler side (snapshots, from ``DagCode``) and in the worker
(:func:`callable_code`, from the file the callable was loaded from), so both give one hash for
one version of a DAG file.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: Decorator keywords recorded as a task's settings (``@ml.task``, ``@ml.check``, ``@ml.metric``).
SETTING_NAMES = frozenset(
    {"severity", "lower", "upper", "regression", "notifier", "memory_warning_mb", "max_failing_samples"}
)

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_DEF_HEAD = re.compile(r"(?:async\s+)?def\s+")
_LINE_END = re.compile(r"\r\n|\r|\n")  # the line breaks ast counts (not form feeds)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class TaskCode:
    """A task function found in a DAG file.

    :param source: what a person reads: the function (from ``def``, dedented), then each
        dependency's source under a ``# name`` line.
    :param code_hash: SHA-256 over the function and its dependencies (see the module docstring).
    :param function_hash: SHA-256 of the function alone (name replaced by ``_``).
    :param dependencies: ``{name: SHA-256 of its source}``; names bound in an enclosing function
        are prefixed with that function's name (``pipeline.threshold``).
    :param settings: ``{keyword: source text}`` of the decorator settings in :data:`SETTING_NAMES`.
    """

    source: str
    code_hash: str
    function_hash: str
    dependencies: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)


def _split_lines(source: str) -> list[str]:
    lines, start = [], 0
    for match in _LINE_END.finditer(source):
        lines.append(source[start : match.end()])
        start = match.end()
    if start < len(source):
        lines.append(source[start:])
    return lines


def _in_scope(body: Iterable[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements of one scope, including inside ``if``/``for``/``while``/``with``/``try``/``match``
    blocks, but not inside nested functions or classes (which are yielded themselves)."""
    for node in body:
        yield node
        if isinstance(node, (*_FUNCTION_NODES, ast.ClassDef)):
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _in_scope([child])
            elif isinstance(child, (ast.excepthandler, ast.match_case)):
                yield from _in_scope(child.body)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


def _bindings(body: Iterable[ast.stmt]) -> dict[str, list[ast.stmt]]:
    """Names a scope binds by assignment, import, ``def`` or ``class`` -> the binding statements."""
    found: dict[str, list[ast.stmt]] = {}
    for node in _in_scope(body):
        names: list[str] = []
        if isinstance(node, (*_FUNCTION_NODES, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [n for target in node.targets for n in _target_names(target)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            names = list(_target_names(node.target))
        elif isinstance(node, ast.Import):
            names = [alias.asname or alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.asname or alias.name for alias in node.names if alias.name != "*"]
        for name in names:
            found.setdefault(name, []).append(node)
    return found


def _arguments(args: ast.arguments) -> list[ast.arg]:
    return [
        *args.posonlyargs,
        *args.args,
        *([args.vararg] if args.vararg else []),
        *args.kwonlyargs,
        *([args.kwarg] if args.kwarg else []),
    ]


def _outer_expressions(node: ast.AST) -> list[ast.AST]:
    """Parts of a ``def``/``class``/``lambda`` evaluated in the enclosing scope (no annotations)."""
    if isinstance(node, (*_FUNCTION_NODES, ast.Lambda)):
        parts: list[ast.AST] = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            parts.extend(node.decorator_list)
        return parts
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    return []


def _free_names(scope: ast.AST) -> set[str]:
    """Names a function, lambda, class body or comprehension reads from enclosing scopes."""
    loads: set[str] = set()
    stores: set[str] = set()
    declared_global: set[str] = set()
    if isinstance(scope, (*_FUNCTION_NODES, ast.Lambda)):
        stores.update(a.arg for a in _arguments(scope.args))
        body: list[ast.AST] = list(scope.body) if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, ast.ClassDef):
        body = list(scope.body)
    elif isinstance(scope, _COMPREHENSIONS):
        for generator in scope.generators:
            stores.update(_target_names(generator.target))
        body = [*(g.iter for g in scope.generators[1:]), *(c for g in scope.generators for c in g.ifs)]
        body += [scope.key, scope.value] if isinstance(scope, ast.DictComp) else [scope.elt]
        loads |= _names_read(scope.generators[0].iter)  # evaluated in the enclosing scope
    else:
        body = [scope]
    nested: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
            continue
        if isinstance(node, (*_SCOPE_NODES, *_COMPREHENSIONS)):
            if isinstance(node, (*_FUNCTION_NODES, ast.ClassDef)):
                stores.add(node.name)
            nested |= _free_names(node)
            for part in _outer_expressions(node):
                pending.append(part)
            continue
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stores.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            stores.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            # annotations are not evaluated at run time under `from __future__ import annotations`
            pending.append(node.target)
            if node.value is not None:
                pending.append(node.value)
            continue
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            stores.add(node.name)
        pending.extend(ast.iter_child_nodes(node))
    local = stores - declared_global
    return (loads | nested) - local


def _names_read(node: ast.AST) -> set[str]:
    """Names an expression or statement reads, including from nested lambdas/comprehensions."""
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            names.add(child.id)
    return names


class SourceIndex:
    """Finds functions in a DAG file by qualified name; parses the file once."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self._tree: ast.Module | None = None
        self._parsed = False
        self._lines: list[str] | None = None
        self._cache: dict[str, TaskCode | None] = {}
        self._scopes: dict[int, dict[str, ast.AST]] = {}
        self._bindings: dict[int, dict[str, list[ast.stmt]]] = {}
        self._parents: dict[int, ast.AST] = {}

    @property
    def tree(self) -> ast.Module | None:
        if not self._parsed:
            self._parsed = True
            if self.source:
                try:
                    self._tree = ast.parse(self.source)
                except (SyntaxError, ValueError):
                    self._tree = None
                if self._tree is not None:
                    for parent in ast.walk(self._tree):
                        for child in ast.iter_child_nodes(parent):
                            self._parents[id(child)] = parent
        return self._tree

    # -- public ------------------------------------------------------------------------------------

    def task_code(self, qualname: str, *, settings: bool = False) -> TaskCode | None:
        """The function ``qualname`` with its dependencies (and decorator settings when
        ``settings``), or ``None`` when the file does not define it."""
        key = f"{qualname}\0{settings}"
        if key not in self._cache:
            self._cache[key] = self._task_code(qualname, settings)
        return self._cache[key]

    # -- finding -----------------------------------------------------------------------------------

    def _function(self, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        tree = self.tree
        if tree is None:
            return None
        parts = [p for p in qualname.split(".") if p != "<locals>"]
        if not parts or any(p.startswith("<") for p in parts):
            return None  # lambdas, comprehensions
        node: ast.AST = tree
        for part in parts:
            found = self._scope_defs(node).get(part)
            if found is None:
                return None
            node = found
        return node if isinstance(node, _FUNCTION_NODES) else None

    def _scope_defs(self, node: ast.AST) -> dict[str, ast.AST]:
        """Names bound by ``def``/``class`` directly in ``node``'s scope (the first one wins)."""
        key = id(node)
        if key not in self._scopes:
            names: dict[str, ast.AST] = {}
            for child in _in_scope(getattr(node, "body", [])):
                if isinstance(child, (*_FUNCTION_NODES, ast.ClassDef)):
                    names.setdefault(child.name, child)
            self._scopes[key] = names
        return self._scopes[key]

    def _scope_bindings(self, scope: ast.AST) -> dict[str, list[ast.stmt]]:
        key = id(scope)
        if key not in self._bindings:
            self._bindings[key] = _bindings(getattr(scope, "body", []))
        return self._bindings[key]

    def _enclosing(self, node: ast.AST) -> list[ast.AST]:
        """Function scopes around ``node``, innermost first, then the module (classes skipped)."""
        chain: list[ast.AST] = []
        parent = self._parents.get(id(node))
        while parent is not None:
            if isinstance(parent, (*_FUNCTION_NODES, ast.Module)):
                chain.append(parent)
            parent = self._parents.get(id(parent))
        return chain

    def _ancestors(self, node: ast.AST) -> set[int]:
        found = set()
        parent = self._parents.get(id(node))
        while parent is not None:
            found.add(id(parent))
            parent = self._parents.get(id(parent))
        return found

    # -- text --------------------------------------------------------------------------------------

    def _segment(self, node: ast.AST, *, decorators: bool) -> str | None:
        """The node's source, dedented (like ``ast.get_source_segment(padded=True)``)."""
        end_lineno, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        if end_lineno is None or end_col is None or self.source is None:
            return None
        if self._lines is None:
            self._lines = _split_lines(self.source)
        lines = self._lines
        start: ast.AST = node
        if decorators and getattr(node, "decorator_list", None):
            start = node.decorator_list[0]  # type: ignore[attr-defined]
        first, last = start.lineno - 1, end_lineno - 1  # type: ignore[attr-defined]
        if last >= len(lines):
            return None
        col = start.col_offset  # type: ignore[attr-defined]
        if decorators and start is not node:
            col -= 1  # the "@" before the decorator expression
        # ast offsets count UTF-8 bytes.
        if first == last:
            text = lines[first].encode()[col:end_col].decode()
        else:
            prefix = lines[first].encode()[:col].decode()
            padding = prefix if prefix.isspace() else " " * len(prefix)
            head = lines[first].encode()[col:].decode()
            tail = lines[last].encode()[:end_col].decode()
            text = padding + head + "".join(lines[first + 1 : last]) + tail
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        return textwrap.dedent(text).rstrip() + "\n"

    # -- analysis ----------------------------------------------------------------------------------

    def _task_code(self, qualname: str, with_settings: bool) -> TaskCode | None:
        node = self._function(qualname)
        if node is None:
            return None
        text = self._segment(node, decorators=False)
        if text is None:
            return None
        normalized = text
        head = _DEF_HEAD.match(text)
        if head is not None and text.startswith(node.name, head.end()):
            normalized = f"{text[: head.end()]}_{text[head.end() + len(node.name) :]}"
        sources = self._dependencies(node)
        hashed = normalized + "".join(f"\n# {name}\n{sources[name]}" for name in sorted(sources))
        shown = text + "".join(f"\n# {name}\n{sources[name]}" for name in sorted(sources))
        return TaskCode(
            source=shown,
            code_hash=sha256_text(hashed),
            function_hash=sha256_text(normalized),
            dependencies={name: sha256_text(sources[name]) for name in sorted(sources)},
            settings=_settings(node) if with_settings else {},
        )

    def _dependencies(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
        """``{name: source}`` of everything ``function`` uses from its file, transitively."""
        excluded = self._ancestors(function) | {id(function)}
        found: dict[str, str] = {}
        seen: set[tuple[int, str]] = set()
        own = _free_names(function)
        for default in _outer_expressions(function):
            if default not in function.decorator_list:
                own |= _names_read(default)
        # Decorator arguments are settings: what they use from the file counts, except imports
        # (``Regression``, a notifier class): adding a setting must not read as a code change.
        settings_only = _decorator_arguments(function) - own
        pending: list[tuple[ast.AST, set[str]]] = [(function, own | settings_only)]
        while pending:
            origin, names = pending.pop()
            chain = self._enclosing(origin)
            for name in sorted(names):
                for scope in chain:
                    statements = self._scope_bindings(scope).get(name)
                    if not statements:
                        continue
                    if (id(scope), name) in seen:
                        break
                    statements = [s for s in statements if id(s) not in excluded]
                    if origin is function and name in settings_only:
                        statements = [
                            s for s in statements if not isinstance(s, (ast.Import, ast.ImportFrom))
                        ]
                    if not statements:
                        break
                    seen.add((id(scope), name))
                    label = name if isinstance(scope, ast.Module) else f"{scope.name}.{name}"  # type: ignore[attr-defined]
                    texts = [self._segment(s, decorators=True) or "" for s in statements]
                    found[label] = "".join(texts)
                    for statement in statements:
                        pending.append((statement, _statement_names(statement)))
                    break
        return found


def _decorator_arguments(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names read by the task function's decorator *arguments* (not the decorator itself)."""
    names: set[str] = set()
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call):
            for argument in [*decorator.args, *decorator.keywords]:
                names |= _names_read(argument)
    return names


def _statement_names(statement: ast.stmt) -> set[str]:
    """Names a binding statement reads from its scope (a helper's free names, a value's names)."""
    if isinstance(statement, (*_FUNCTION_NODES, ast.ClassDef)):
        names = _free_names(statement)
        for part in _outer_expressions(statement):
            names |= _names_read(part)
        return names
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return set()
    if isinstance(statement, ast.Assign):
        return _names_read(statement.value) | {
            n for t in statement.targets if not isinstance(t, ast.Name) for n in _names_read(t)
        }
    if isinstance(statement, ast.AugAssign):
        return _names_read(statement.value) | set(_target_names(statement.target))
    if isinstance(statement, ast.AnnAssign):
        return _names_read(statement.value) if statement.value is not None else set()
    return _names_read(statement)


def _settings(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
    settings: dict[str, str] = {}
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        for keyword in decorator.keywords:
            if keyword.arg is None:
                settings["**"] = ast.unparse(keyword.value)
            elif keyword.arg in SETTING_NAMES:
                settings[keyword.arg] = ast.unparse(keyword.value)
    return dict(sorted(settings.items()))


def display_setting(text: str | None) -> str:
    """A setting's source text for people: string literals unquoted, long values shortened."""
    if text is None:
        return "none"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = text
    shown = value if isinstance(value, str) else text
    return shown if len(shown) <= 80 else shown[:77] + "..."


def callable_code(func: Callable[..., Any]) -> tuple[str, str]:
    """``(source, code_hash)`` of a task callable, as a DAG snapshot of its file computes them.

    Found in the file the callable was loaded from by its qualified name, with its dependencies in
    that file. Callables that cannot be found there (lambdas, built at run time, no source) fall
    back to their own source text (decorators included) and its SHA-256.
    """
    target = inspect.unwrap(func)
    qualname = getattr(target, "__qualname__", None)
    try:
        path = inspect.getsourcefile(target)
    except TypeError:
        path = None
    if path and isinstance(qualname, str):
        linecache.checkcache(path)  # as inspect.getsource does: a rewritten file is read again
        source = "".join(linecache.getlines(path))
        code = SourceIndex(source).task_code(qualname) if source else None
        if code is not None:
            return code.source, code.code_hash
    try:
        text = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        text = f"<source of {getattr(func, '__qualname__', func)!r} unavailable>"
    return text, sha256_text(text)
