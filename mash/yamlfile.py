"""The one way MASH Exchange reads a YAML file: bounded in size, aliases and expansion.

A YAML alias (`*name`) refers back to an anchored node (`&name`) without copying it, so a
1 KB file of nested aliases (a "billion laughs") parses to a small graph that expands to
billions of values as soon as anything walks it (validation, Rego's input, JSON). Every
YAML file the project reads (agent, broker, console and client configs, federation.yaml,
agreements, policy test cases) goes through `read_yaml`, which refuses:

- a file larger than `MAX_BYTES` (read at most that much, so a growing file or a device
  cannot make it read more);
- more than `MAX_ALIASES` aliases, merge keys (`<<: *x`) included;
- a document whose values, counted as they would be once every alias is expanded, exceed
  `MAX_NODES`, or their text `MAX_EXPANDED_CHARS` (a long string reused), or that refers to
  itself (a recursive alias);
- nesting deeper than `MAX_DEPTH`.

Each refusal is a `YamlFileError` (a `ConfigError`): one line naming the file and the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mash.errors import ConfigError

MAX_BYTES = 1 << 20  # 1 MiB: the largest agreement today is a few KB
MAX_ALIASES = 64  # a handful of anchors reused in a config is fine; a bomb needs many
MAX_NODES = 100_000  # values once every alias is expanded
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_EXPANDED_CHARS = 8 << 20  # text once every alias is expanded (a long string reused)


class YamlFileError(ConfigError):
    """A YAML file is too large, too deep, or expands too far through its aliases."""


class _AliasLimit(Exception):
    pass


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _loader_class(max_aliases: int, dates_as_text: bool = False) -> type[yaml.SafeLoader]:
    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader (pure Python, so the composer can be watched) counting aliases."""

        aliases_seen = 0

        def compose_node(self, parent: Node | None, index: Any) -> Node | None:
            if self.check_event(yaml.AliasEvent):
                self.aliases_seen += 1
                if self.aliases_seen > max_aliases:
                    raise _AliasLimit
            return super().compose_node(parent, index)

    if dates_as_text:  # 2014-05-17 stays the text it was, for the caller's own date rules
        BoundedLoader.yaml_implicit_resolvers = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return BoundedLoader


def _expanded_size(root: Node, *, max_nodes: int, max_depth: int,
                   max_chars: int = 0) -> str | None:
    """Why the node graph is refused (too many nodes expanded, too deep, recursive), or None.

    Linear in the graph's distinct nodes: each node's expanded size is computed once and
    reused wherever an alias shares it.
    """
    max_chars = max_chars or MAX_EXPANDED_CHARS
    sizes: dict[int, tuple[int, int]] = {}  # node -> (values, characters) once expanded
    on_path: set[int] = set()
    # An explicit stack: (node, depth, children expanded yet?)
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, expanded = stack.pop()
        key = id(node)
        if expanded:
            on_path.discard(key)
            parts = [sizes[id(child)] for child in _children(node)]
            total = 1 + sum(n for n, _ in parts)
            chars = (sum(c for _, c in parts) if parts or not isinstance(node, ScalarNode)
                     else len(node.value))
            if total > max_nodes:
                return f"expands to more than {max_nodes:,} values through its aliases"
            if chars > max_chars:
                return (f"expands to more than {_size(max_chars)} of text through its "
                        "aliases")
            sizes[key] = (total, chars)
            continue
        if key in sizes:
            continue
        if key in on_path:
            return "refers to itself through an alias"
        if depth > max_depth:
            return f"is nested more than {max_depth} levels deep"
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                return "refers to itself through an alias"
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))
    return None


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(
    text: str, *, where: str, max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES,
    max_depth: int = MAX_DEPTH, dates_as_text: bool = False,
) -> Any:
    """Parse one YAML document within the limits; `where` names it in errors.
    `dates_as_text`: an unquoted 2014-05-17 is read as text, not as a date."""
    loader = _loader_class(max_aliases, dates_as_text)(text)
    try:
        try:
            root = loader.get_single_node()
        except _AliasLimit:
            raise YamlFileError(
                f"{where}: more than {max_aliases} YAML aliases (*name); write the values "
                "out instead") from None
        except RecursionError:
            raise YamlFileError(f"{where}: nested too deeply to read") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise YamlFileError(f"{where}: not valid YAML{at}") from None
        if root is None:
            return None
        problem = _expanded_size(root, max_nodes=max_nodes, max_depth=max_depth)
        if problem is not None:
            raise YamlFileError(f"{where}: refused: the YAML {problem}")
        try:
            return loader.construct_document(root)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise YamlFileError(f"{where}: not valid YAML{at}") from None
        except ValueError as exc:  # e.g. an unquoted 2014-13-01: not a calendar date
            raise YamlFileError(f"{where}: not valid YAML: a value is not what it looks "
                                f"like ({exc}); quote it to keep it as text") from None
        except RecursionError:
            raise YamlFileError(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()


def read_yaml_text(path: str | Path, *, max_bytes: int = MAX_BYTES) -> str:
    """A YAML file's text, read within the size limit (not yet parsed)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise YamlFileError(
            f"{path}: larger than {_size(max_bytes)}, the limit for a YAML file; "
            "is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_yaml(
    path: str | Path, *, max_bytes: int = MAX_BYTES, max_aliases: int = MAX_ALIASES,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Read and parse one YAML file within the limits (None for an empty file)."""
    text = read_yaml_text(path, max_bytes=max_bytes)
    return parse_yaml(text, where=str(path), max_aliases=max_aliases, max_nodes=max_nodes)


Location = tuple[str | int, ...]


def key_lines(text: str) -> dict[Location, int]:
    """The 1-based line of every value in a document `parse_yaml` already accepted, by its
    path (mapping keys and list indexes): error messages can then say where to look."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Location, int] = {}
    stack: list[tuple[Node, Location]] = [(root, ())] if root is not None else []
    while stack:
        node, where = stack.pop()
        lines.setdefault(where, node.start_mark.line + 1)  # a key's own line comes first
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    lines.setdefault((*where, key.value), key.start_mark.line + 1)
                    stack.append((value, (*where, key.value)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*where, i)) for i, item in enumerate(node.value))
    return lines


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"
