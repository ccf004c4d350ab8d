"""docs/api.md is complete and true against the schema the gateway serves.

- The operations table (the first table under ``## Operations``) has one row per root field of Query and
  Mutation, no row for a field that does not exist, the right kind (query or mutation), and says who may
  call it as the field's PermissionExtension declares (``schema.admins.field_access``, the same source as
  docs/permissions.md).
- Every link to a section (``#anchor``, in api.md or another file of docs/) names a heading that exists,
  by GitHub's anchor rules: the heading's text lower-cased, punctuation dropped, each space a hyphen, and
  ``-1``, ``-2`` … after a repeated heading.
- Every ```graphql block of api.md and playground.md parses and validates against the schema (graphql-core
  ``parse`` + ``validate``), as a client would send it: one block is one document (several operations in
  one block must be named). Placeholders go inside strings (``"2addd…"``) or in variables. A block of type
  definitions (SDL, e.g. the ``Error`` interface) must match the schema's types field by field. A block
  whose first line is ``# not validated: <why>`` is left out (a fragment that cannot stand alone); keep
  those few. Every fence is closed: an unclosed one swallows the rest of the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from graphql import (
    ExecutableDefinitionNode,
    GraphQLSyntaxError,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
    parse,
    print_ast,
    validate,
)

from schema.admins import field_access
from schema.root import build_schema

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE_FILES = ("api.md", "playground.md")
NOT_VALIDATED = "# not validated:"

SCHEMA = build_schema()
ACCESS = {access.name: access for access in field_access(SCHEMA)}
# What the "Needs" column starts with, for each kind of declaration (a permission: the permission, in backticks).
NEEDS = {"public": "public", "customer": "customer", "authenticated": "any signed-in customer or admin",
         "admin": "any admin"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\]\(([^)\s#]*)#([^)\s]+)\)")
ROW = re.compile(r"^\|\s*\[`(\w+)`\]\(#([^)]+)\)\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|\s*$")


@dataclass(frozen=True)
class Block:
    file: str
    line: int  # of the opening fence, 1-based
    language: str
    body: str


@dataclass(frozen=True)
class Markdown:
    prose: list[tuple[int, str]]  # (line number, line) outside fenced code
    blocks: list[Block]


def read(file: str) -> Markdown:
    """docs/<file> split into prose and fenced blocks, as CommonMark does: a fence closes only on a bare
    fence of the same character, at least as long. Fails on a fence left open."""
    prose, blocks, opened, body = [], [], None, []
    for number, line in enumerate((DOCS / file).read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if opened is None:
            if match:
                opened, body = (number, match.group(1), match.group(2)), []
            else:
                prose.append((number, line))
        elif match and match.group(1).startswith(opened[1][0] * len(opened[1])) and line.strip() == match.group(1):
            blocks.append(Block(file, opened[0], opened[2], "\n".join(body)))
            opened = None
        else:
            body.append(line)
    assert opened is None, f"{file}:{opened[0]}: this code fence is never closed"
    return Markdown(prose, blocks)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: its text (links and code marks dropped), lower-cased, every character
    but letters, digits, ``_``, ``-`` and spaces dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]", "", text).lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in "_- ").replace(" ", "-")


@cache
def anchors(file: str) -> set[str]:
    """The ids of docs/<file>'s headings (a repeated heading's get ``-1``, ``-2`` …)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in read(file).prose:
        match = HEADING.match(line)
        if match:
            anchor = github_anchor(match.group(2))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def operations_table() -> list[tuple[str, str, str, str]]:
    """(operation, anchor, kind, needs) for each row of the first table under ``## Operations``."""
    lines = [line for _, line in read("api.md").prose]
    start = lines.index("## Operations")
    rows, in_table = [], False
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            in_table = True
            match = ROW.match(line)
            if match:
                rows.append(match.groups())
        elif in_table:
            break
    return rows


def examples() -> list[Block]:
    return [block for file in EXAMPLE_FILES for block in read(file).blocks if block.language == "graphql"]


def sdl_mismatches(document) -> list[str]:
    """How the type definitions written in a block differ from the schema's."""
    schema = SCHEMA._schema
    problems = []
    for definition in document.definitions:
        if not isinstance(definition, TypeDefinitionNode):
            problems.append(f"{definition.kind} is neither an operation nor a type definition")
            continue
        name = definition.name.value
        served = schema.get_type(name)
        if served is None:
            problems.append(f"the schema has no type {name}")
            continue
        if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode
                      | InputObjectTypeDefinitionNode):
            fields = served.fields
            for written in definition.fields or ():
                field = fields.get(written.name.value)
                if field is None:
                    problems.append(f"{name} has no field {written.name.value}")
                elif str(field.type) != print_ast(written.type):
                    problems.append(f"{name}.{written.name.value} is {field.type}, not {print_ast(written.type)}")
    return problems


# -- the operations table -------------------------------------------------------------------------------


def test_the_operations_table_lists_every_root_field_once_with_its_kind_and_who_may_call_it():
    # given the root fields the gateway serves, each with its kind and what its declaration requires
    expected = {name: ("query" if access.operation == "Query" else "mutation",
                       f"`{access.permission}`" if access.who == "permission" else NEEDS[access.who])
                for name, access in ACCESS.items()}

    # when the operations table of docs/api.md is read
    rows = operations_table()
    listed = [name for name, _, _, _ in rows]

    # then every field has exactly one row, every row is a field, and each says the kind and who may call it
    assert sorted(set(expected) - set(listed)) == [], "root fields missing from the operations table"
    assert sorted(set(listed) - set(expected)) == [], "rows for fields the schema does not have"
    assert sorted({name for name in listed if listed.count(name) > 1}) == [], "fields listed twice"
    wrong = [f"{name}: '{kind} | {needs}', declared '{expected[name][0]} | {expected[name][1]}…'"
             for name, _, kind, needs in rows if name in expected
             and (kind != expected[name][0] or not needs.startswith(expected[name][1]))]
    assert wrong == []


def test_every_section_link_names_a_heading_that_exists():
    # given every link to a section in api.md and playground.md (outside code), and the headings of docs/
    broken = []
    for file in EXAMPLE_FILES:
        for number, line in read(file).prose:
            for target, anchor in LINK.findall(line):
                # when the anchor is looked for in the file it points to
                if target.startswith(("http:", "https:")) or "/" in target:
                    continue
                if anchor not in anchors(target or file):
                    broken.append(f"{file}:{number}: {target}#{anchor}")

    # then there is a heading for each
    assert broken == []


# -- the examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", examples(), ids=lambda block: f"{block.file}:{block.line}")
def test_each_graphql_example_parses_and_validates_against_the_schema(block: Block):
    # given one ```graphql block of the docs
    if block.body.lstrip().startswith(NOT_VALIDATED):
        pytest.skip("marked: " + block.body.lstrip().splitlines()[0])

    # when it is parsed
    try:
        document = parse(block.body)
    except GraphQLSyntaxError as error:
        pytest.fail(f"{block.file}:{block.line}: does not parse: {error.message} (line {error.locations[0].line})")

    # then it is a valid document for the schema (operations), or matches the schema's types (SDL)
    if all(isinstance(definition, ExecutableDefinitionNode) for definition in document.definitions):
        problems = [error.message for error in validate(SCHEMA._schema, document)]
    else:
        problems = sdl_mismatches(document)
    assert problems == [], f"{block.file}:{block.line}"
