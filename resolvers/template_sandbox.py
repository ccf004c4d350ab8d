"""Untrusted templates rendered under a budget: a time limit and a size limit, enforced inside the render.

Admins write email templates, so a template is untrusted code: Jinja's ``ImmutableSandboxedEnvironment``
keeps it away from Python internals and from mutating the data it is given (``customer.update(...)``
is refused), and ``render_source`` bounds what it may spend:

- **Time.** While a render runs, its own thread has a trace function (``sys.settrace``) that checks a
  monotonic deadline on every Python call and line the render executes: Jinja compiles templates to
  Python, so every loop iteration of a template, and of the Jinja and library code it calls, passes
  a check. (Compiling, on a cache miss, counts too, checked on every call.) Past the deadline the
  render aborts where it stands; nothing keeps burning a core after the caller gave up. What a
  check cannot interrupt is one long call into C, so the size rules below stop every operation that
  would build something big.
- **Size.** Output is streamed (``Template.generate``) and counted in UTF-8 bytes; past
  ``max_output_bytes`` the render aborts. No value a template makes may be larger than that either:
  every value is *weighed* (about ``len(str(value))``, without building the string; shared
  references count each time, as ``str`` would print them), operations that can build far more
  than they are given (``'a' * n``, ``x ** n``, ``'%99999s' % x``, ``'{:>99999}'.format(x)``,
  ``|center(n)``, ``|indent(n)``, ``|join``, ``|replace``, ``|batch``, ``str.center``, ``int.to_bytes``,
  ``lipsum(n)`` …) are estimated *before* they run, through the sandbox's hooks (``call_binop``,
  ``call``, the ``str.format`` formatter, every filter, the ``~`` operator, ``finalize``), and every
  value made is charged to an allocation allowance of ``ALLOCATION_FACTOR`` times the output limit,
  so many values just under the limit cannot add up either.

The internal abort is a ``BaseException`` so that no ``except Exception`` in Jinja or the standard
library can swallow it; callers receive ``TemplateTooSlow`` or ``TemplateTooLarge``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, update_wrapper, wraps
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import StrictUndefined
from jinja2.compiler import CodeGenerator, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, generate_lorem_ipsum
from markupsafe import Markup

ALLOCATION_FACTOR = 16
"""A render may make values adding up to this many times ``max_output_bytes`` (4 MiB by default)."""

MAX_INT_DIGITS = 4300
"""Integers are limited to CPython's own limit for converting them to text (CVE-2020-10735)."""
MAX_INT_BITS = MAX_INT_DIGITS * 3322 // 1000


@dataclass(frozen=True)
class RenderBudget:
    """What one render of one template part may spend: wall-clock milliseconds and bytes of output."""

    timeout_ms: int = 200
    max_output_bytes: int = 256 * 1024


class TemplateBudgetExceeded(Exception):
    """A template part needed more than its budget; ``code`` is the stable field-error code."""

    code = "TEMPLATE_BUDGET"


class TemplateTooSlow(TemplateBudgetExceeded):
    code = "TEMPLATE_TOO_SLOW"

    def __init__(self, budget: RenderBudget) -> None:
        super().__init__(f"Takes longer than {budget.timeout_ms} ms to render.")


class TemplateTooLarge(TemplateBudgetExceeded):
    code = "TEMPLATE_TOO_LARGE"

    def __init__(self, budget: RenderBudget) -> None:
        super().__init__(f"Renders, or builds on the way, more than {budget.max_output_bytes} bytes.")


class _Abort(BaseException):
    """Unwinds a render from wherever it is; see the module docstring."""

    def __init__(self, error: TemplateBudgetExceeded) -> None:
        super().__init__(str(error))
        self.error = error


_SCALARS = (bool, int, float, type(None))
_SEQUENCES = (str, bytes, list, tuple)
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_CONTAINERS = (list, tuple, set, frozenset, dict, *_VIEWS)


class _Meter:
    """The running account of one render, on the thread that renders it."""

    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        self.max_value = budget.max_output_bytes
        self.allowance = ALLOCATION_FACTOR * budget.max_output_bytes
        self.output_bytes = 0
        self.deadline = time.monotonic() + budget.timeout_ms / 1000
        self._weights: dict[int, tuple[Any, int]] = {}  # id -> (the object, kept alive so ids stay unique; weight)
        self._open: set[int] = set()

    def too_large(self) -> _Abort:
        return _Abort(TemplateTooLarge(self.budget))

    def tracer(self, *, lines: bool) -> Callable:
        """A ``sys.settrace`` function checking the deadline on every call, and with ``lines`` on every line."""
        deadline, clock, budget = self.deadline, time.monotonic, self.budget

        def trace(frame, event, arg):
            if clock() > deadline:
                raise _Abort(TemplateTooSlow(budget))
            return trace if lines and frame.f_code not in _BOUNDED_CODE else None

        return trace

    def expect(self, size: int) -> None:
        """Refuse, before it runs, an operation estimated to make a value of ``size`` bytes."""
        if size > self.max_value or size > self.allowance:
            raise self.too_large()

    def made(self, value: Any) -> Any:
        """Weigh a value just made and charge it to the allowance."""
        self.charge(self.weigh(value))
        return value

    def charge(self, size: int) -> None:
        self.allowance -= size
        if self.allowance < 0:
            raise self.too_large()

    def output(self, chunk: str) -> None:
        self.output_bytes += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
        if self.output_bytes > self.budget.max_output_bytes:
            raise self.too_large()

    def weigh(self, value: Any) -> int:
        """About ``len(str(value))``, in characters, without building it; over the value limit aborts."""
        if isinstance(value, (str, bytes)):
            size = len(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            size = value.bit_length() * 3 // 10 + 2
        elif isinstance(value, _SCALARS):
            size = 24
        elif isinstance(value, (*_CONTAINERS, Namespace)):
            size = self._weigh_container(value)
        else:
            size = 64  # the repr of an object, a range, a generator, a loop, a macro
        if size > self.max_value:
            raise self.too_large()
        return size

    def _weigh_container(self, value: Any) -> int:
        key = id(value)
        known = self._weights.get(key)
        if known is not None:
            return known[1]
        if key in self._open:
            return 8  # a cycle prints as [...]
        self._open.add(key)
        try:
            if isinstance(value, Namespace):
                return 16 + self.weigh(object.__getattribute__(value, "_Namespace__attrs"))  # mutable: not memoised
            size = 2
            items = value.items() if isinstance(value, dict) else value
            for item in items:
                size += self.weigh(item) + 2
                if size > self.max_value:
                    raise self.too_large()
        finally:
            self._open.discard(key)
        self._weights[key] = (value, size)
        return size


# Loops that end by themselves, fast: weighing stops at the value limit (every element adds at least 2).
# They are checked on every call, not on every line.
_BOUNDED_CODE = frozenset({_Meter.weigh.__code__, _Meter._weigh_container.__code__})


_local = threading.local()


def _meter() -> _Meter:
    meter = getattr(_local, "meter", None)
    if meter is None:
        raise RuntimeError("untrusted templates render only through render_source")
    return meter


def _count(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _number(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than CPython converts
        raise _meter().too_large() from None


# -- estimates of the operations that can make much more than they are given -------------------------

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0+\- ]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def _printf_size(m: _Meter, template: str, args: Any) -> int:
    """``template % args``: the template, the widths and precisions it asks for, and the values."""
    values = args if isinstance(args, tuple) else (args,)
    size, fields, star = len(template), 0, False
    for width, precision, conversion in _PRINTF_SPEC.findall(template):
        if conversion == "%":
            continue
        fields += 1
        for number in (width, precision):
            if number == "*":
                star = True
            elif number:
                size += _number(number)
    if star:
        size += sum(v for v in values if type(v) is int and v > 0)
    if isinstance(args, Mapping):  # %(name)s may repeat a value; %s prints the whole mapping
        return size + m.weigh(args) + fields * max((m.weigh(v) for v in args.values()), default=0)
    return size + sum(m.weigh(v) for v in values)


def _binop_size(m: _Meter, operator: str, left: Any, right: Any) -> int:
    if operator == "*":
        if type(left) in (int, bool) and type(right) in (int, bool):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise m.too_large()
            return 0
        if isinstance(left, int) and isinstance(right, _SEQUENCES):
            left, right = right, left
        if isinstance(left, _SEQUENCES) and isinstance(right, int):
            return m.weigh(left) * max(right, 0)
    elif operator == "**":
        if type(left) is int and type(right) is int and right > 0 and abs(left) > 1 \
                and abs(left).bit_length() * right > MAX_INT_BITS:
            raise m.too_large()
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            return m.weigh(left) + m.weigh(right)
    elif operator == "%" and isinstance(left, str):
        return _printf_size(m, left, right)
    return 0


def _replace_size(m: _Meter, s: Any, old: Any, new: Any, count: Any = None) -> int:
    s, old, new = str(s), str(old), str(new)
    found = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(s) + found * max(0, len(new) - len(old))


def _materialized(m: _Meter, items: Iterable) -> list:
    return m.made(list(items))


def _joined_size(m: _Meter, separator: Any, items: list) -> int:
    return sum(m.weigh(item) for item in items) + m.weigh(separator) * max(0, len(items) - 1)


# Filters: each estimate takes the environment and the filter's own arguments (those after Jinja's
# context, eval context or environment), and may return a replacement for the first one (a list
# instead of an iterator that it had to read).

def _center_filter(m, env, value, width=80):
    m.expect(max(m.weigh(value), _count(width)))


def _indent_filter(m, env, s, width=4, first=False, blank=False):
    unit = len(width) if isinstance(width, str) else _count(width)
    m.expect(m.weigh(s) + (str(s).count("\n") + 1) * unit)


def _format_filter(m, env, value, *args, **kwargs):
    m.expect(_printf_size(m, str(value), kwargs or args))


def _attributes(env, items: list, attribute: Any) -> list:
    return items if attribute is None else list(map(make_attrgetter(env, attribute), items))


def _join_filter(m, env, value, d="", attribute=None):
    items = _materialized(m, value)
    m.expect(_joined_size(m, d, _attributes(env, items, attribute)))
    return items


def _replace_filter(m, env, s, old, new, count=None):
    m.expect(_replace_size(m, s, old, new, count))


def _wordwrap_filter(m, env, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    if wrapstring is not None:
        m.expect(m.weigh(s) * max(1, m.weigh(wrapstring)))


def _urlize_filter(m, env, value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None):
    m.expect(m.weigh(value) * (1 + (m.weigh(target) if target else 0) + (m.weigh(rel) if rel else 0)))


def _batch_filter(m, env, value, linecount, fill_with=None):
    if fill_with is not None:
        m.expect(_count(linecount) * (m.weigh(fill_with) + 2))


def _slice_filter(m, env, value, slices, fill_with=None):
    m.expect(_count(slices) * (m.weigh(fill_with) + 4))


def _sum_filter(m, env, iterable, attribute=None, start=0):
    """Summing lists or tuples copies the running total at every step: charged as one element a copy."""
    items = _materialized(m, iterable)
    length, copied = 0, 0
    for value in (start, *_attributes(env, items, attribute)):
        length += len(value) if isinstance(value, _SEQUENCES) else 1
        copied += length
    m.charge(copied)
    return items


FILTER_ESTIMATES: dict[str, Callable] = {
    "center": _center_filter, "indent": _indent_filter, "format": _format_filter, "join": _join_filter,
    "replace": _replace_filter, "wordwrap": _wordwrap_filter, "urlize": _urlize_filter,
    "batch": _batch_filter, "slice": _slice_filter, "sum": _sum_filter,
}


# Methods of str (and Markup, bytes) and int, and the lipsum() global. Each returns replacement arguments or None.

def _pad_method(m, s, width, *rest):
    m.expect(max(len(s), _count(width)))


def _expandtabs_method(m, s, tabsize=8):
    m.expect(len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(0, _count(tabsize)))


def _replace_method(m, s, old, new, count=-1):
    m.expect(_replace_size(m, s, old, new, count))


def _join_method(m, s, iterable):
    items = _materialized(m, iterable)
    m.expect(_joined_size(m, s, items))
    return (items,)


def _translate_method(m, s, table):
    longest = max((m.weigh(v) for v in table.values() if isinstance(v, str)), default=1) \
        if isinstance(table, Mapping) else 1
    m.expect(len(s) * max(1, longest))


def _to_bytes_method(m, number, length=1, *rest, **kwargs):
    m.expect(_count(length))


def _lipsum(m, n=5, html=True, min=20, max=100):  # noqa: A002 (lipsum's own parameter names)
    m.expect(_count(n) * _count(max) * 16)


STR_METHOD_ESTIMATES: dict[str, Callable] = {
    "center": _pad_method, "ljust": _pad_method, "rjust": _pad_method, "zfill": _pad_method,
    "expandtabs": _expandtabs_method, "replace": _replace_method, "join": _join_method,
    "translate": _translate_method,
}


def _call_estimate(m: _Meter, obj: Any, args: tuple, kwargs: dict) -> tuple | None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", None)
    if isinstance(owner, (str, bytes)) and name in STR_METHOD_ESTIMATES:
        return STR_METHOD_ESTIMATES[name](m, owner, *args, **kwargs)
    if isinstance(owner, int) and name == "to_bytes":
        return _to_bytes_method(m, owner, *args, **kwargs)
    if obj is generate_lorem_ipsum:
        return _lipsum(m, *args, **kwargs)
    return None


# -- the environment ----------------------------------------------------------------------------------

class _FieldBudget:
    """``str.format`` fields: the width and precision a field asks for count before it is formatted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        m = _meter()
        size = m.weigh(value) + sum(_number(n) for n in re.findall(r"\d+", format_spec))
        m.expect(size)
        m.charge(size)
        return super().format_field(value, format_spec)


class _BudgetFormatter(_FieldBudget, SandboxedFormatter):
    pass


class _BudgetEscapeFormatter(_FieldBudget, SandboxedEscapeFormatter):
    pass


class _BudgetCodeGenerator(CodeGenerator):
    """Jinja's code generator, with the parts of ``a ~ b`` weighed before they are joined."""

    @optimizeconst
    def visit_Concat(self, node, frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.budget_parts((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``, before it becomes text."""
    return _meter().made(value)


def _bounded_json_dumps(obj: Any, **kwargs: Any) -> str:
    """``|tojson``: with ``indent``, output grows with nesting depth, so it is streamed and counted."""
    if kwargs.get("indent") is None:
        return json.dumps(obj, **kwargs)
    m, size, chunks = _meter(), 0, []
    for chunk in json.JSONEncoder(**kwargs).iterencode(obj):
        size += len(chunk)
        m.expect(size)
        chunks.append(chunk)
    return "".join(chunks)


def _budgeted_filter(env: BudgetedEnvironment, name: str, function: Callable) -> Callable:
    estimate = FILTER_ESTIMATES.get(name)
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @wraps(function)
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        m = _meter()
        for value in (*args[skip:], *kwargs.values()):
            m.weigh(value)
        if estimate is not None:
            replacement = estimate(m, env, *args[skip:], **kwargs)
            if replacement is not None:
                args = (*args[:skip], replacement, *args[skip + 1:])
        return m.made(function(*args, **kwargs))

    return budgeted


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every way of making a large value routed through the render's meter."""

    code_generator_class = _BudgetCodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.filters = {name: _budgeted_filter(self, name, f) for name, f in self.filters.items()}
        self.policies["json.dumps_function"] = _bounded_json_dumps

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        m = _meter()
        m.expect(_binop_size(m, operator, left, right))
        return m.made(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        m = _meter()
        own = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        for value in (*args, *own.values()):
            m.weigh(value)
        replacement = _call_estimate(m, __obj, args, own)
        if replacement is not None:
            args = replacement
        return m.made(super().call(__context, __obj, *args, **kwargs))

    def budget_parts(self, parts: tuple) -> tuple:
        """The parts of ``a ~ b ~ …``, weighed and charged before they are joined."""
        m = _meter()
        size = sum(m.weigh(part) for part in parts)
        m.expect(size)
        m.charge(size)
        return parts

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """As Jinja's, with a formatter that checks each field's size first."""
        if not isinstance(value, (MethodType, BuiltinMethodType)) or value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        str_type = type(owner)
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter = (_BudgetEscapeFormatter(self, escape=owner.escape)
                                         if isinstance(owner, Markup) else _BudgetFormatter(self))

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)


@lru_cache(maxsize=2)
def _environment(autoescape: bool) -> BudgetedEnvironment:
    return BudgetedEnvironment(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)


@lru_cache(maxsize=256)
def _compiled(source: str, autoescape: bool):
    return _environment(autoescape).from_string(source)


def render_source(source: str, part: str, variables: dict[str, Any], budget: RenderBudget) -> str:
    """Compile (cached) and render one template part on the calling thread, within ``budget``.

    ``part`` is ``subject``, ``html`` (autoescaped) or ``text``. Raises ``TemplateTooSlow`` past
    ``budget.timeout_ms`` of wall-clock time, ``TemplateTooLarge`` when the output or any value built on
    the way would pass ``budget.max_output_bytes``, and otherwise whatever the template raises
    (``TemplateSyntaxError``, ``SecurityError``, ``UndefinedError``, ``TypeError`` …). Blocking: call it
    from a worker thread (the gateway's render pool), never on the event loop.
    """
    meter = _Meter(budget)
    outer_meter, outer_trace = getattr(_local, "meter", None), sys.gettrace()
    _local.meter = meter
    sys.settrace(meter.tracer(lines=False))  # compiling: Jinja's own code, linear in the source
    try:
        template = _compiled(source, part == "html")
        sys.settrace(meter.tracer(lines=True))  # rendering: the template's code and all it calls
        chunks = []
        for chunk in template.generate(**variables):
            meter.output(chunk)
            chunks.append(chunk)
    except _Abort as abort:
        raise abort.error from None
    finally:
        sys.settrace(outer_trace)
        _local.meter = outer_meter
    return "".join(chunks)
