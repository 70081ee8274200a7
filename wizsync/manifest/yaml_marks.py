"""Load YAML and remember the line of every key, so errors can name it.

PyYAML's ``compose`` keeps node marks; we construct the plain data with the
safe constructor and walk the same node tree to map each key path
(``('chatbots', 2, 'tenant')``) to its 1-based line. Duplicate mapping keys,
which PyYAML silently resolves to the last one, are an error here.

Hostile input is refused before anything walks the data: composing keeps
an alias as a second reference to the same node, so a 3 KB "billion
laughs" document composes in microseconds, but everything after it (line
marks, validation) would visit each of its billions of values. The node
graph is measured first, once per node: at most ``MAX_ALIASES`` alias uses,
at most ``MAX_ALIAS_EXPANSION`` values added by expanding them, and no
alias inside itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
import yaml.reader

from .errors import ManifestError

__all__ = ["LocatedYaml", "load_located_yaml", "load_plain_yaml", "located_lines", "MAX_ALIASES", "MAX_ALIAS_EXPANSION"]

# Far above what anchors in a real manifest add (a shared block per chatbot of a
# 10,000-chatbot fleet is 10,000 uses), far below what costs a runner its memory.
MAX_ALIASES = 100_000
MAX_ALIAS_EXPANSION = 1_000_000

KeyPath = tuple[Any, ...]

# libyaml's parser keeps the same node marks and errors at about 5x the speed
# of the pure-Python one (a 10,000-chatbot manifest: bench/scale.py).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class LocatedYaml:
    """Parsed data plus ``lines[path]`` (line of the key, or of the item for list indexes)."""

    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[Any]) -> int | None:
        """Line of ``path``, or of its nearest located ancestor."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[Any], message: str, hint: str | None = None) -> ManifestError:
        return ManifestError(message, file=self.file, line=self.line_of(path), key=path or None, hint=hint)


def load_located_yaml(text: str, file: str) -> LocatedYaml:
    """Parse one YAML document; YAML errors become ``ManifestError`` with the line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LocatedYaml(None, file, {})
        _check_aliases(node, file)
        lines: dict[KeyPath, int] = {}
        _walk(node, (), lines, file)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file) from None
    finally:
        loader.dispose()
    return LocatedYaml(data, file, lines)


def load_plain_yaml(text: str, file: str) -> Any:
    """The data of one YAML document, with no line kept and no node tree built for a plain tree
    (``yaml_stream``); anything else takes ``load_located_yaml``'s way. Errors as there."""
    from .yaml_stream import NotPlain, plain_tree

    loader = _Loader(text)
    try:
        return plain_tree(loader, file)
    except NotPlain:
        pass
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, file) from None
    finally:
        loader.dispose()
    return load_located_yaml(text, file).data


def _yaml_error(exc: yaml.YAMLError, file: str) -> ManifestError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" (started at line {exc.context_mark.line + 1})"
        problem = _without_content(" ".join(filter(None, [context, exc.problem])))
        return ManifestError(
            f"invalid YAML: {problem or 'syntax error'}",
            file=file,
            line=line,
            hint="Check the indentation and quoting around that line (a value holding ': ' or starting with '{', '[', '*', '&' or '@' needs quotes)",
        )
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else (exc.character or b"?")[0]
        return ManifestError(
            f"invalid YAML: character #x{char:02x} at offset {exc.position} is not allowed in YAML text",
            file=file,
            hint="Is this a text file? Remove control characters from it",
        )
    return ManifestError(f"invalid YAML ({type(exc).__name__})", file=file)


def located_lines(text: str, file: str) -> dict[KeyPath, int]:
    """The line index of a text ``load_located_yaml`` has already accepted (no data built again)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        if node is not None:
            _walk(node, (), lines, file)
        return lines
    finally:
        loader.dispose()


# A quoted fragment of PyYAML's messages quotes the file ("found undefined alias 'x'",
# "found character '\t'", a tag): the line number is enough, the file may be anyone's secret.
# Token names ('<block end>'), single punctuation (',' or ']') and a tab are kept: they say what went wrong.
_QUOTED = re.compile(r"(\s*)('[^']*'|\"[^\"]*\")")
_KEPT = re.compile(r"'(<[a-z ]+>|[^\w\s']|\\t)'")


def _without_content(message: str) -> str:
    return _QUOTED.sub(lambda m: m.group(0) if _KEPT.fullmatch(m.group(2)) else "", message)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Refuse a node graph whose aliases expand too far, are too many, or contain themselves.

    Iterative and once per distinct node: the cost is the size of the text, whatever
    the aliases would expand to. ``size`` is a node's value count with aliases expanded.
    """
    size: dict[int, int] = {}
    edges = 0
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] - len(size) > MAX_ALIAS_EXPANSION:
                raise _hostile(file, node, f"its aliases expand to more than {MAX_ALIAS_EXPANSION:,} values")
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        children = _children(node)
        edges += len(children)
        for child in children:
            if id(child) in on_path:
                raise _hostile(
                    file, child, "an alias refers to a node that contains it (a recursive structure)",
                    "A manifest is a tree: write out the values the alias stands for",
                )
            if id(child) not in size:
                stack.append((child, False))
    aliases = edges - (len(size) - 1)  # a tree of n nodes has n - 1 edges; each other edge is an alias use
    if aliases > MAX_ALIASES:
        raise _hostile(file, root, f"it uses {aliases:,} aliases (at most {MAX_ALIASES:,})")


_EXPANSION_HINT = (
    "A document that grows this much when its anchors (&name) and aliases (*name) are expanded is a "
    "'billion laughs' attack or a mistake; write the values out, or share fewer of them"
)


def _hostile(file: str, node: yaml.Node, why: str, hint: str = _EXPANSION_HINT) -> ManifestError:
    return ManifestError(f"refused: {why}", file=file, line=node.start_mark.line + 1, hint=hint)


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], file: str) -> None:
    if len(path) > 64:  # a recursive alias (&a [*a]): the data is not a manifest anyway
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key: Any = key_node.value
            if key == "<<":  # merge key: its keys are located at the alias
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ManifestError(
                    f"duplicate key '{key}' (first at line {seen[key]})",
                    file=file,
                    line=line,
                    key=path + (key,) if path else (key,),
                    hint="Keep one of them: YAML would silently use the last",
                )
            seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), lines, file)
