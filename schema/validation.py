"""Validation whose cost grows linearly with the document: limits first, then graphql-core's rules, cached.

Threat: a short unauthenticated document that keeps the single event loop busy. Three shapes were
measured (a 2000-token document, graphql-core 3.3.2):

- Fragments that spread the next one twice (``fragment F0 on Query { ...F1 ...F1 }`` ... 20 levels,
  about 800 characters): Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk every
  fragment *path*, so each level doubles their work (0.22 s at 16 levels, hours at 30).
  ``document_measure`` below visits each definition once and memoises each fragment's depth,
  alias count and spreads, so it is linear; a spread that closes a cycle counts as nothing
  (``NoFragmentCyclesRule`` reports cycles).
- Many fields under one response name (``{ me { id } me { id } ... }`` 400 times): graphql-core's
  ``OverlappingFieldsCanBeMergedRule`` compares them pairwise, 0.6 s. The rule meters its own work
  with a complexity budget (500 000 units, about 1 s); ``BudgetedOverlapRule`` gives it
  ``OVERLAP_BUDGET`` units (about 20 ms, measured). Realistic documents spend almost none: a
  document without repeated response names spends 0.
- Errors per directive (``{ __typename @aa@aa@aa... }``: one error per directive, about a thousand):
  directives are capped per document before the rules run, and ``validate`` stops after
  ``MAX_VALIDATION_ERRORS``.

The other rules of graphql-core measured linear on the shapes tried (long fragment chains, many
operations sharing a fragment, many variables, duplicated arguments and input fields).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationRule,
    parse,
    validate,
)
from graphql.validation import OverlappingFieldsCanBeMergedRule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

# Errors reported per document; graphql-core then adds one "error limit reached" error.
MAX_VALIDATION_ERRORS = 10
# Work units of OverlappingFieldsCanBeMergedRule per document (graphql-core's default: 500 000).
OVERLAP_BUDGET = 10_000
# The rules Strawberry's own validate_document adds to the list (a test checks this stays true).
STRAWBERRY_RULES: tuple[type[ValidationRule], ...] = (MaybeNullValidationRule, OneOfInputValidationRule)
CACHE_SIZE = 512
# Longer documents are parsed and validated every time: with 1 MiB bodies, 512 cached documents
# (their text, tokens and AST) could hold gigabytes. Client documents are rarely over a few KiB.
CACHEABLE_CHARACTERS = 20_000

ABORTED = "Validation aborted."
ABORTED_CLEARLY = ("Validation aborted: the document is too complex to check "
                   "(too many overlapping fields or too deeply nested fragments).")


@dataclass(frozen=True)
class DocumentLimits:
    """Per-document limits, checked before any validation rule runs.

    ``max_depth``: nesting of fields with a selection set, followed through fragments;
    introspection fields (``__schema``, ``__type``) are not counted. ``max_aliases``: aliased
    fields of all operations, a fragment counted each time it is spread. ``max_directives``:
    directives written in the document (each counts once, wherever it is).
    """

    max_depth: int = 12
    max_aliases: int = 15
    max_directives: int = 50


@dataclass
class _Definition:
    """What one operation or fragment holds by itself, its spreads not followed."""

    depth: int = 0
    aliases: int = 0
    directives: int = 0
    # (fragment name, nesting at the spread); the nesting is None inside an introspection field.
    spreads: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass
class DocumentMeasure:
    """``depths``: (operation, its depth) per operation, in document order; unnamed ones are 'anonymous'."""

    depths: list[tuple[OperationDefinitionNode, int]]
    aliases: int
    directives: int


def _summarise(definition: OperationDefinitionNode | FragmentDefinitionNode) -> _Definition:
    summary = _Definition(directives=len(definition.directives or ()))
    for variable in getattr(definition, "variable_definitions", None) or ():
        summary.directives += len(variable.directives or ())
    # Iterative: the parser bounds the nesting, the interpreter's stack is not asked to.
    stack: list[tuple[object, int | None]] = [(definition.selection_set, 0)]
    while stack:
        selection_set, level = stack.pop()
        if level is not None:
            summary.depth = max(summary.depth, level)
        for selection in selection_set.selections:
            summary.directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                if selection.alias:
                    summary.aliases += 1
                if selection.selection_set:
                    counted = level is not None and not selection.name.value.startswith("__")
                    stack.append((selection.selection_set, level + 1 if counted else None))
            elif isinstance(selection, InlineFragmentNode):
                stack.append((selection.selection_set, level))
            elif isinstance(selection, FragmentSpreadNode):
                summary.spreads.append((selection.name.value, level))
    return summary


def _resolve_fragments(fragments: dict[str, _Definition]) -> tuple[dict[str, int], dict[str, int]]:
    """Each fragment's depth and alias count with its spreads followed, each fragment resolved once."""
    depths: dict[str, int] = {}
    aliases: dict[str, int] = {}
    for root in fragments:
        if root in depths:
            continue
        path: list[tuple[str, Iterator[tuple[str, int | None]]]] = [(root, iter(fragments[root].spreads))]
        on_path = {root}
        while path:
            name, spreads = path[-1]
            for spread, _ in spreads:
                if spread in fragments and spread not in depths and spread not in on_path:
                    path.append((spread, iter(fragments[spread].spreads)))
                    on_path.add(spread)
                    break
            else:
                path.pop()
                on_path.discard(name)
                depths[name], aliases[name] = _combine(fragments[name], depths, aliases)
    return depths, aliases


def _combine(summary: _Definition, depths: dict[str, int], aliases: dict[str, int]) -> tuple[int, int]:
    """A definition's totals from its own counts and its resolved spreads (unknown or cyclic: 0)."""
    depth, count = summary.depth, summary.aliases
    for spread, level in summary.spreads:
        count += aliases.get(spread, 0)
        if level is not None:
            depth = max(depth, level + depths.get(spread, 0))
    return depth, count


def document_measure(document: DocumentNode) -> DocumentMeasure:
    """Depth per operation, aliases and directives of a document, in time linear in its size."""
    fragments: dict[str, _Definition] = {}
    operations: list[tuple[OperationDefinitionNode, _Definition]] = []
    directives = 0
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            summary = _summarise(definition)
            fragments.setdefault(definition.name.value, summary)  # a duplicate name is a validation error
        elif isinstance(definition, OperationDefinitionNode):
            summary = _summarise(definition)
            operations.append((definition, summary))
        else:
            continue
        directives += summary.directives
    fragment_depths, fragment_aliases = _resolve_fragments(fragments)
    depths, aliases = [], 0
    for operation, summary in operations:
        depth, count = _combine(summary, fragment_depths, fragment_aliases)
        depths.append((operation, depth))
        aliases += count
    return DocumentMeasure(depths=depths, aliases=aliases, directives=directives)


def limit_errors(document: DocumentNode, limits: DocumentLimits) -> list[GraphQLError]:
    """Errors for each limit the document exceeds; the messages are the ones Strawberry's limiters used."""
    measure = document_measure(document)
    errors = []
    if measure.directives > limits.max_directives:
        errors.append(GraphQLError(f"{measure.directives} directives found. Allowed: {limits.max_directives}"))
    for operation, depth in measure.depths:
        if depth > limits.max_depth:
            name = operation.name.value if operation.name else "anonymous"
            errors.append(GraphQLError(f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                                       [operation]))
    if measure.aliases > limits.max_aliases:
        errors.append(GraphQLError(f"{measure.aliases} aliases found. Allowed: {limits.max_aliases}"))
    return errors


class BudgetedOverlapRule(OverlappingFieldsCanBeMergedRule):
    """graphql-core's field-merging rule with a smaller work budget (``OVERLAP_BUDGET``)."""

    def __init__(self, context) -> None:
        super().__init__(context)
        self.rule_context.remaining_complexity_budget = OVERLAP_BUDGET


def _with_budget(rules: Collection[type[ValidationRule]]) -> tuple[type[ValidationRule], ...]:
    swapped = tuple(BudgetedOverlapRule if rule is OverlappingFieldsCanBeMergedRule else rule for rule in rules)
    return swapped + tuple(rule for rule in STRAWBERRY_RULES if rule not in swapped)


def _clarified(error: GraphQLError) -> GraphQLError:
    if error.message != ABORTED:
        return error
    return GraphQLError(ABORTED_CLEARLY)


class _BySource:
    """A cache key for a document: its source text (hashed once per string by Python, compared with
    memcmp), carrying the parsed document. A DocumentNode's own hash walks the AST in Python."""

    __slots__ = ("document", "source")

    def __init__(self, source: str, document: DocumentNode) -> None:
        self.source = source
        self.document = document

    def __hash__(self) -> int:
        return hash(self.source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _BySource) and other.source == self.source


class DocumentValidator:
    """Validates documents: the limits (cheap, linear), then graphql-core's rules, results cached.

    Build one per schema: the cache (``CACHE_SIZE`` documents, keyed by the source text the document
    was parsed from, or by the document when no source is given) lives in it. Documents longer than
    ``CACHEABLE_CHARACTERS`` are not cached.
    ``hide_suggestions`` drops "Did you mean ...?" from validation messages (production).
    Returns the errors, at most ``MAX_VALIDATION_ERRORS`` plus one saying the limit was reached.
    """

    def __init__(self, limits: DocumentLimits, *, hide_suggestions: bool = False) -> None:
        self.limits = limits
        self.hide_suggestions = hide_suggestions
        self._cached = lru_cache(maxsize=CACHE_SIZE)(self._validate)

    def __call__(self, schema: GraphQLSchema, document: DocumentNode, rules: Collection[type[ValidationRule]],
                 source: str | None = None) -> list[GraphQLError]:
        """``source``: the text ``document`` was parsed from (with the same parse options every time)."""
        if document.loc is None or document.loc.end > CACHEABLE_CHARACTERS:
            return self._validate(schema, document, tuple(rules))
        return self._cached(schema, document if source is None else _BySource(source, document), tuple(rules))

    def _validate(self, schema: GraphQLSchema, document: DocumentNode | _BySource,
                  rules: tuple[type[ValidationRule], ...]) -> list[GraphQLError]:
        if isinstance(document, _BySource):
            document = document.document
        errors = limit_errors(document, self.limits)
        if errors:
            return errors
        errors = validate(schema, document, _with_budget(rules), max_errors=MAX_VALIDATION_ERRORS,
                          hide_suggestions=self.hide_suggestions)
        return [_clarified(error) for error in errors]


# Parsed documents up to ``CACHEABLE_CHARACTERS``, ``CACHE_SIZE`` of them (what Strawberry's ParserCache
# does, without an extension of its own): ``cached_parse(query, **parse_options)``. The same text
# gives the same DocumentNode, so the validation cache above hits.
cached_parse = lru_cache(maxsize=CACHE_SIZE)(parse)
