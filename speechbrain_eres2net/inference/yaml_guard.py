r"""What a model folder's HyperPyYAML may name, checked before anything is built.

HyperPyYAML runs code in more places than its tags show (read from
``hyperpyyaml/core.py``, ``yaml/constructor.py`` and ruamel.yaml's
constructor):

* ``!new:``, ``!name:``, ``!module:`` and ``!apply:`` import (and call)
  their dotted target; ``pydoc.locate`` walks attributes, so a trusted
  prefix can reach another module (``pkg.mod.os.system``);
* the final load is ``yaml.load(..., Loader=ruamel.yaml.Loader)``, whose
  constructor also builds PyYAML's ``!!python/...`` tags;
* ``!applyref:`` calls and ``!include:`` reads a file while references are
  resolved, before the resolved text exists;
* a tuple's text (``!tuple "(...)"``, or any plain scalar matching the
  implicit resolver ``^\(.*\)$``) is parsed again with PyYAML's unsafe
  ``yaml.Loader`` (``_make_tuple``), where any ``!!python/...`` tag runs;
* a reference with an attribute (``!ref <a.b>``) becomes ``!apply:getattr``;
* the final load reads HyperPyYAML's re-dump of the resolved tree, so a
  string put together by ``!ref`` interpolation is parsed again, and may
  come out as a plain ``(...)`` scalar, that is a tuple.

:func:`check_hyperparams` therefore checks twice, composing (never
constructing) the YAML: the text as written (every tag, anchors, aliases,
merge keys, more than one document, tuple texts, attribute references),
then the text HyperPyYAML will load after resolving references (every tag
and tuple text again, now including what interpolation built). Resolving
references runs no code once ``!applyref:`` and ``!include:`` are refused,
and it is a function of the text alone, so the caller loading the same text
loads what was checked.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import inspect
import io
import pydoc
import re
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from ..settings import default

YAML_TAG = "tag:yaml.org,2002:"
# HyperPyYAML tags whose values are data: references, copies, tuples (their
# text is checked apart), placeholders.
DATA_TAGS = frozenset({"!ref", "!copy", "!tuple", "!PLACEHOLDER"})
# YAML's own types; any other ``!!`` tag (``!!python/object/apply:...``) runs
# code in the loaders HyperPyYAML uses. ``merge`` (``<<``) is not among them:
# anchors, aliases and merge keys are refused in a folder (``!ref`` does
# their job), and ``value`` (``=``) has no constructor.
CORE_TAGS = frozenset(
    f"{YAML_TAG}{kind}"
    for kind in (
        *("str", "int", "float", "bool", "null", "binary", "timestamp"),
        *("seq", "map", "set", "omap", "pairs"),
    )
)
MERGE_TAG = f"{YAML_TAG}merge"
# Tags that import a dotted target; plain allow-list entries cover them.
IMPORT_TAGS = ("!new:", "!name:", "!module:")
# Calls a function at load time: only an entry naming tag and target exactly
# (``!apply:pkg.func``) covers it.
APPLY_TAG = "!apply:"
# Run (or read another file) while references are resolved, so what they
# produce cannot be checked before it is used: refused unless trusted.
RESOLVE_TAGS = ("!applyref:", "!include:")
# hyperpyyaml.core: the implicit tuple resolver and the reference finder.
TUPLE_TEXT = re.compile(r"^\(.*\)$", re.DOTALL)
REFERENCE = re.compile(r"<[^>]*>")
OVERRIDE = (
    "(model_folder_trusted_targets in verification.yaml); pass "
    "--trust-model-code (trust_code=True) only for a folder you trust"
)


class ModelFolderError(ValueError):
    """A model folder that cannot be loaded as it is (a user error)."""


class UntrustedModelError(ModelFolderError):
    """A model folder names code, or files, outside what it may use untrusted."""


def is_trusted(tag: str, target: str, trusted: Sequence[str]) -> bool:
    """Whether an allow-list entry covers ``<tag><target>``.

    An entry ending with ``.`` covers every target it starts, any other entry
    the target it equals; both cover the importing tags (``!new:``,
    ``!name:``, ``!module:``). An entry that starts with ``!`` covers that
    tag and target exactly, and is the only kind that covers ``!apply:``.

    Example
    -------
    >>> is_trusted("!new:", "torch.nn.Linear", ["torch.nn."])
    True
    >>> is_trusted("!apply:", "torch.nn.Linear", ["torch.nn."])
    False
    >>> is_trusted("!apply:", "pkg.make", ["!apply:pkg.make"])
    True
    """
    for entry in trusted:
        if entry.startswith("!"):
            if entry == f"{tag}{target}":
                return True
        elif tag in IMPORT_TAGS and (
            target.startswith(entry) if entry.endswith(".") else target == entry
        ):
            return True
    return False


def _defined_as(target: str) -> Optional[str]:
    """Where the object ``target`` names is defined (``module.qualname``).

    A name may reach another module through an attribute (``pkg.mod.os.system``
    is ``posix.system``); this is what the allow-list checks it by too. Only
    called on targets the allow-list covers, so only their modules import.
    None when nothing of that name exists (SpeechBrain then says so); an
    object that is no class, function or module is described by its type.
    """
    try:
        obj = pydoc.locate(target)
    except pydoc.ErrorDuringImport:
        return None
    if obj is None:
        return None
    if inspect.ismodule(obj):
        return obj.__name__
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return f"a {type(obj).__name__} object"


def shown_tag(tag: str) -> str:
    """A tag as it is written (``!!python/name:x``, not the long form).

    Example
    -------
    >>> shown_tag("tag:yaml.org,2002:python/name:os.system")
    '!!python/name:os.system'
    """
    return tag.replace(YAML_TAG, "!!", 1) if tag.startswith(YAML_TAG) else tag


def tag_refusal(tag: str, trusted: Sequence[str]) -> Optional[str]:
    """Why a node with this tag may not load, or None when it may.

    Example
    -------
    >>> tag_refusal("!new:torch.nn.Linear", ["torch.nn."]) is None
    True
    >>> tag_refusal("tag:yaml.org,2002:python/module:os", [])
    'uses the tag !!python/module:os, which is neither data nor on the allow-list'
    """
    if tag in DATA_TAGS or tag in CORE_TAGS:
        return None
    shown = shown_tag(tag)
    if tag.startswith(RESOLVE_TAGS):
        return (
            f"uses {shown}, which HyperPyYAML runs while resolving references, "
            "before what it gives can be checked"
        )
    kind = next((k for k in (*IMPORT_TAGS, APPLY_TAG) if tag.startswith(k)), None)
    if kind is None:
        return f"uses the tag {shown}, which is neither data nor on the allow-list"
    target = tag[len(kind) :]
    if not is_trusted(kind, target, trusted):
        return f"uses {shown}, which is not on the allow-list of trusted targets"
    defined = _defined_as(target)
    if defined not in (None, target) and not is_trusted(kind, defined, trusted):
        return (
            f"uses {shown}, which is {defined}, not on the allow-list of "
            "trusted targets"
        )
    return None


def yaml_nodes(root: Any, path: str = "") -> Iterator[tuple[str, Any, bool]]:
    """``(key path, node, again)`` of every node of a composed YAML tree.

    Document order, mapping keys before their values (a key's path ends with
    ``<key>``); a node reached again through an alias comes once more with
    ``again`` True and is not walked twice. Iterative: a deep tree needs no
    deep recursion.

    Example
    -------
    >>> from ruamel.yaml import YAML
    >>> tree = YAML(typ="rt").compose("a: &x {b: [1, !name:os.system ]}\\nc: *x")
    >>> [(p, shown_tag(n.tag), again) for p, n, again in yaml_nodes(tree)][-3:]
    [('a.b[1]', '!name:os.system', False), ('c.<key>', '!!str', False), \
('c', '!!map', True)]
    """
    seen: set[int] = set()
    stack = [(root, path)]
    while stack:
        node, where = stack.pop()
        again = id(node) in seen
        yield where, node, again
        if again:
            continue
        seen.add(id(node))
        children = []
        if isinstance(node.value, list):
            for i, child in enumerate(node.value):
                if isinstance(child, tuple):  # a mapping's (key, value)
                    key, value = child
                    name = key.value if isinstance(key.value, str) else "<key>"
                    inner = f"{where}.{name}" if where else name
                    children += [(key, f"{inner}.<key>"), (value, inner)]
                else:
                    children.append((child, f"{where}[{i}]"))
        stack.extend(reversed(children))


def tuple_refusal(text: str) -> Optional[str]:
    """Why a tuple's text may not be parsed by PyYAML's unsafe loader, or None.

    HyperPyYAML parses ``"[" + text[1:-1] + "]"`` with ``yaml.Loader``; here
    the same string is composed by PyYAML (the same parser, constructing
    nothing) and every tag must be one of YAML's data types. Text that does
    not parse is let through: PyYAML composes a whole document before it
    constructs any of it, so the load fails before anything runs.

    Example
    -------
    >>> tuple_refusal("(80, 3.5, [a, b])") is None
    True
    >>> print(tuple_refusal("(!!python/name:os.system , 1)"))
    holds tuple text with the tag !!python/name:os.system (parsed by PyYAML's \
unsafe loader, which would run it)
    """
    import yaml

    documents = yaml.compose_all("[" + text[1:-1] + "]", Loader=yaml.SafeLoader)
    try:
        for count, document in enumerate(documents):
            if count:
                return "holds tuple text of more than one YAML document"
            for _, node, _ in yaml_nodes(document):
                if node.tag not in CORE_TAGS:
                    return (
                        f"holds tuple text with the tag {shown_tag(node.tag)} "
                        "(parsed by PyYAML's unsafe loader, which would run it)"
                    )
                why = tuple_refusal(node.value) if _is_tuple(node) else None
                if why is not None:
                    return why
    except yaml.YAMLError:
        return None
    return None


def _is_tuple(node: Any) -> bool:
    """Whether HyperPyYAML may parse a scalar's text as a tuple.

    Any style is taken, not only plain scalars: a quoted string can come
    back plain from HyperPyYAML's re-dump.
    """
    return isinstance(node.value, str) and (
        node.tag == "!tuple" or TUPLE_TEXT.match(node.value) is not None
    )


def _node_refusal(node: Any, again: bool, written: bool, trusted) -> Optional[str]:
    """Why one node may not load; ``written``: the text as the folder has it.

    Tags first, so that an anchor carrying a tag is refused naming the tag.
    """
    if again:
        # HyperPyYAML's own re-dump writes aliases for shared objects.
        if written:
            return "is a YAML alias; anchors, aliases and merge keys are refused"
        return None
    if node.tag == MERGE_TAG:
        return "is a YAML merge key (<<); anchors, aliases and merge keys are refused"
    why = tag_refusal(node.tag, trusted)
    if why is None and _is_tuple(node):
        why = tuple_refusal(node.value)
    if why is None and node.tag in ("!ref", "!copy") and isinstance(node.value, str):
        attributes = [r for r in REFERENCE.findall(node.value) if "." in r]
        if attributes:
            why = (
                f"refers to {attributes[0]}, an attribute, which HyperPyYAML "
                "reads by calling getattr (!apply:getattr)"
            )
    if why is None and written and getattr(node, "anchor", None):
        why = (
            f"sets the YAML anchor &{node.anchor}; anchors, aliases and merge keys "
            "are refused (use !ref)"
        )
    return why


def _compose(text: str, loader: str, name: str) -> Any:
    """The one document of ``text``, composed by ruamel.yaml, constructing nothing.

    ``loader`` is ``"rt"`` for ruamel's round-trip parser (HyperPyYAML's
    first pass), ``"Loader"`` for ``ruamel.yaml.Loader`` (its final load).
    """
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml import Loader as RuamelLoader

    try:
        if loader == "rt":
            documents = list(YAML(typ="rt").compose_all(text))
        else:
            parser = RuamelLoader(text)
            documents = []
            while parser.check_node():
                documents.append(parser.get_node())
    except YAMLError as err:
        first = " ".join(str(err).split())
        raise ModelFolderError(f"{name}: not valid YAML: {first}") from err
    if len(documents) != 1:
        raise UntrustedModelError(
            f"{name}: holds {len(documents)} YAML documents, expected one {OVERRIDE}"
        )
    if not isinstance(documents[0].value, list) or documents[0].tag != (
        f"{YAML_TAG}map"
    ):
        raise ModelFolderError(f"{name}: expected a YAML mapping of keys")
    return documents[0]


def _refuse(tree: Any, written: bool, name: str, trusted: Sequence[str]) -> None:
    for path, node, again in yaml_nodes(tree):
        why = _node_refusal(node, again, written, trusted)
        if why is not None:
            raise UntrustedModelError(
                f"{name}: '{path or '(document)'}' {why} {OVERRIDE}"
            )


def resolved_text(text: str, name: str) -> str:
    """The YAML HyperPyYAML loads after resolving references, overrides and copies.

    Only for text already checked as written (no ``!applyref:``, no
    ``!include:``): resolving then runs no code and reads no file.

    Example
    -------
    >>> resolved_text("a: 3\\nb: !ref <a> + 1\\n", "m/hyperparams.yaml")
    'a: 3\\nb: 4\\n'
    """
    from hyperpyyaml import resolve_references
    from ruamel.yaml import YAMLError

    try:
        return resolve_references(io.StringIO(text)).getvalue()
    except (YAMLError, ValueError) as err:
        first = " ".join(str(err).split())
        raise ModelFolderError(f"{name}: {first}") from err


def check_hyperparams(
    text: str, name: str, trusted: Optional[Sequence[str]] = None
) -> None:
    """Refuses a ``hyperparams.yaml`` that could run untrusted code.

    Nothing is constructed: the text is composed and checked as written
    (tags, anchors, aliases, merge keys, documents, tuple texts, attribute
    references), then as HyperPyYAML will load it after resolving references.
    Data tags (``!ref``, ``!copy``, ``!tuple``, ``!PLACEHOLDER``) and YAML's
    own types pass; ``!new:``/``!name:``/``!module:`` targets (and where
    they are defined) must be on the allow-list (:func:`is_trusted`),
    ``!apply:`` exactly; any other tag is refused.

    Arguments
    ---------
    text : str
        The YAML text; load this same text afterwards.
    name : str
        The file, named in the error.
    trusted : sequence of str, optional
        Allow-list; default ``model_folder_trusted_targets`` of
        ``hparams/verification.yaml``.

    Raises
    ------
    UntrustedModelError
        One line naming the file, the key, the tag and the way round it.
    ModelFolderError
        The text is no YAML mapping (one line).

    Example
    -------
    >>> check_hyperparams("lin: !new:torch.nn.Linear [2, 2]", "m/hyperparams.yaml")
    >>> check_hyperparams("x: (!!python/name:os.system )", "m/hyperparams.yaml")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.inference.yaml_guard.UntrustedModelError: \
m/hyperparams.yaml: 'x' holds tuple text with the tag !!python/name:os.system ...
    """
    if trusted is None:
        trusted = default("model_folder_trusted_targets")
    _refuse(_compose(text, "rt", name), True, name, trusted)
    _refuse(_compose(resolved_text(text, name), "Loader", name), False, name, trusted)
