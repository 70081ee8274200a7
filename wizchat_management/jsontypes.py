"""Names for JSON data whose shape is open (documents from users and servers, extension fields).

Where the shape is known the SDK has a model (``wizchat_management.models``);
these aliases are for the rest, so an annotation says "any JSON" rather than
"anything at all". Read-only views (``Sequence``/``Mapping``), so a
``list[str]`` or a ``dict[str, int]`` is a ``JSONValue`` as it stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias, Union

__all__ = ["JSONValue", "JSONObject", "JSONArray"]

JSONValue: TypeAlias = Union[None, bool, int, float, str, Sequence["JSONValue"], Mapping[str, "JSONValue"]]
JSONObject: TypeAlias = Mapping[str, JSONValue]
JSONArray: TypeAlias = Sequence[JSONValue]
