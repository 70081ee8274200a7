"""A plain YAML tree built straight from the parser's events, never composed as nodes first.

Composing keeps a node and two marks per value until the whole file is read: ~3 KB per chatbot
of a generated manifest (32 MB at 10,000 chatbots, bench/scale.py), the largest thing a run
ever held. Built from events, a value costs only itself, and the duplicate-key check runs on
the way. The same safe constructors turn each scalar into its value.

Only plain trees are built so: anchors, aliases, merge keys (``<<``), non-scalar keys and
explicitly tagged collections raise ``NotPlain``, and the caller takes the composing path
(``yaml_marks``), which measures aliases and knows every YAML construct. Line numbers are
not kept: an error that needs them rebuilds them from the text (``yaml_marks.located_lines``).
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ManifestError

__all__ = ["NotPlain", "plain_tree"]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_DEFAULT_TAGS = (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")


class NotPlain(Exception):
    """The text uses a construct this builder leaves to the composing path."""


class _Builder:
    def __init__(self, loader: Any, file: str) -> None:
        self.loader, self.file = loader, file
        self.path: list[Any] = []  # key path of the value being built (for a duplicate key's error)
        self.constructors = loader.yaml_constructors

    def document(self) -> Any:
        get, check = self.loader.get_event, self.loader.check_event
        get()  # stream start
        if check(yaml.StreamEndEvent):
            return None
        start = get()  # document start
        data = self.value(get())
        get()  # document end
        if not check(yaml.StreamEndEvent):
            event = get()
            raise yaml.composer.ComposerError("expected a single document in the stream", start.start_mark,
                                              "but found another document", event.start_mark)
        return data

    def value(self, event: Any) -> Any:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise NotPlain
        if isinstance(event, yaml.ScalarEvent):
            return self.scalar(event)
        if event.tag not in _DEFAULT_TAGS:
            raise NotPlain
        if isinstance(event, yaml.SequenceStartEvent):
            return self.sequence()
        return self.mapping()

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _STR:
            return event.value
        if tag == _MERGE:
            raise NotPlain
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        construct = self.constructors.get(tag) or self.constructors[None]
        return construct(self.loader, node)

    def sequence(self) -> list[Any]:
        get, check = self.loader.get_event, self.loader.check_event
        items: list[Any] = []
        while not check(yaml.SequenceEndEvent):
            self.path.append(len(items))
            items.append(self.value(get()))
            self.path.pop()
        get()
        return items

    def mapping(self) -> dict[Any, Any]:
        get, check = self.loader.get_event, self.loader.check_event
        result: dict[Any, Any] = {}
        seen: dict[str, int] = {}
        while not check(yaml.MappingEndEvent):
            event = get()
            if not isinstance(event, yaml.ScalarEvent) or event.anchor is not None:
                raise NotPlain
            key = self.scalar(event)
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            if event.value in seen:
                raise ManifestError(
                    f"duplicate key '{event.value}' (first at line {seen[event.value]})",
                    file=self.file,
                    line=line,
                    key=(*self.path, event.value),
                    hint="Keep one of them: YAML would silently use the last",
                )
            seen[event.value] = line
            self.path.append(event.value)
            result[key] = self.value(get())
            self.path.pop()
        get()
        return result


def plain_tree(loader: Any, file: str) -> Any:
    """The data of the one document ``loader`` reads; ``NotPlain`` when it is no plain tree.

    YAML errors are the parser's, raised as they are (the caller words them).
    """
    return _Builder(loader, file).document()
