"""Load YAML and remember the line of every key, so errors can name it.

PyYAML's ``compose`` keeps node marks; we construct the plain data with the
safe constructor and walk the same node tree to map each key path
(``('chatbots', 2, 'tenant')``) to its 1-based line. Duplicate mapping keys,
which PyYAML silently resolves to the last one, are an error here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ManifestError

__all__ = ["LocatedYaml", "load_located_yaml"]

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
        lines: dict[KeyPath, int] = {}
        _walk(node, (), lines, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" (started at line {exc.context_mark.line + 1})"
        problem = " ".join(filter(None, [context, exc.problem]))
        raise ManifestError(
            f"invalid YAML: {problem or 'syntax error'}",
            file=file,
            line=line,
            hint="Check the indentation and quoting around that line (a value holding ': ' or starting with '{', '[', '*', '&' or '@' needs quotes)",
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return LocatedYaml(data, file, lines)


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
