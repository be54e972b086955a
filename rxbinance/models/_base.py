"""Shared machinery of the models: ParseError, field declarations and the from_dict generator.

Every model is declared once, as a frozen, slotted dataclass whose fields name the JSON key they
come from (``price: Decimal = _f("p")``). ``@_model`` turns that declaration into the dataclass and
into a ``from_dict`` classmethod generated for that class alone: one straight-line function with
the key lookups, the type checks and the conversions inlined, which is what keeps parsing cheap on
the hot path (see ``_compile``). When that fast function fails for any reason, a slow, generic walk
over the same declarations (``_diagnose``) finds the first bad field and builds the ParseError, so
the fast path never pays for error reporting.

Conversion rules, chosen from the field's annotation:

- ``int``: a JSON integer (``bool`` is rejected). Fields named ``*_time`` also accept a string of
  decimal digits, because Binance sends some times as strings (futures ``listenKeyExpired.E``).
- ``Decimal``: a JSON string holding a finite decimal number; JSON numbers are rejected, because a
  float has already lost the exact value Binance sent.
- ``str`` / ``bool``: exactly that JSON type.
- ``Levels``: a JSON array of ``[price, quantity]`` pairs of decimal strings.
- ``tuple[Model, ...]``: a JSON array of objects, each parsed by ``Model.from_dict``.
- ``X | None`` (or any field with a default): the key may be absent or null, giving the default.
"""

from __future__ import annotations

import dataclasses
import html
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import (
    Any,
    ClassVar,
    Self,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from rxbinance.errors import ParseError  # defined in the one exception tree; re-exported here

__all__ = ["Levels", "ParseError"]

Levels = tuple[tuple[Decimal, Decimal], ...]
"""Book levels as ``((price, quantity), ...)`` in the order Binance sent them."""


# --------------------------------------------------------------------------------------------
# Declarations


def _f(key: str | None, *, default: Any = dataclasses.MISSING, convert: Any = None) -> Any:
    """Declare a model field read from JSON key ``key``.

    ``key`` may be dotted (``"k.o"``) for a field one object down. ``key=None`` marks a context
    field that is not in the payload but passed to ``from_dict`` as a keyword argument (the
    symbol of a spot partial depth). ``default`` makes the field optional: absent or null gives
    the default. ``convert`` replaces the annotation-driven conversion with a callable that
    returns the value or raises ``_Invalid``.
    """
    return dataclasses.field(default=default, metadata={"key": key, "convert": convert})


class _Model:
    """Base of every model: one generated ``from_dict`` per subclass (see ``_model``)."""

    __slots__ = ()

    EVENT_LABEL: ClassVar[str] = "?"
    """Event type used in error messages (and the dispatch key when ``EVENT_TYPES`` is empty)."""
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ()
    """Values of ``"e"`` this model parses; ``parse`` dispatches on them."""
    _specs: ClassVar[tuple[_Spec, ...]] = ()

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Self:
        """Build the model from a decoded JSON payload (the event object, not a wrapper).

        Unknown keys are ignored. Raises ParseError naming the event and the first bad field.
        """
        raise NotImplementedError  # replaced on every concrete model by @_model

    def _repr_html_(self) -> str:
        """Jupyter's rich display: an HTML table, one row per field (attribute, value, the JSON
        key it came from). ``*_time`` values also show as UTC; book levels and nested models
        show their first 10 entries. Every value is HTML-escaped."""
        return _html_table(self)


_M = TypeVar("_M", bound=_Model)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(_f,))
def _model(cls: type[_M]) -> type[_M]:
    """Make ``cls`` a frozen, slotted, keyword-only dataclass and generate its ``from_dict``."""
    cls = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)
    hints = get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # a dataclass since the line above
    specs = tuple(_spec_of(cls, f, hints[f.name]) for f in fields)
    cls._specs = specs
    cls.from_dict = classmethod(_compile(cls, specs))  # type: ignore[method-assign,assignment]
    return cls


# --------------------------------------------------------------------------------------------
# Datetime views of the millisecond fields


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(ms: int) -> datetime:
    # Exact: timedelta arithmetic, not a float division, so no millisecond is ever rounded away.
    return _EPOCH + timedelta(milliseconds=ms)


class _Utc:
    """Read-only attribute: the int milliseconds field ``source`` as an aware UTC datetime."""

    def __init__(self, source: str) -> None:
        self._source = source
        self.__doc__ = f"``{source}`` (epoch milliseconds) as an aware UTC datetime."

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> datetime: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> Self | datetime:
        if obj is None:
            return self
        return _utc(getattr(obj, self._source))


class _OptionalUtc:
    """Like ``_Utc`` for an optional field: ``None`` when the field is ``None``."""

    def __init__(self, source: str) -> None:
        self._source = source
        self.__doc__ = f"``{source}`` (epoch milliseconds) as an aware UTC datetime, or None."

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> datetime | None: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> Self | datetime | None:
        if obj is None:
            return self
        ms = getattr(obj, self._source)
        return None if ms is None else _utc(ms)


# --------------------------------------------------------------------------------------------
# Slow converters: the single definition of what each kind accepts. The generated fast path
# inlines the common case and calls these for everything else, so both paths agree.


class _Invalid(Exception):
    """A value did not convert; ``reason`` reads ``expected <what>, got <value>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(what: str, value: Any) -> _Invalid:
    return _Invalid(f"expected {what}, got {_show(value)}")


def _c_int(value: Any) -> int:
    if value.__class__ is int:
        return int(value)
    raise _expected("an integer", value)


def _c_time(value: Any) -> int:
    if value.__class__ is int:
        return int(value)
    # Futures listenKeyExpired sends E as "1736996475556"; only plain digits are taken, so
    # "1e3", " 12" or "1_000" (all accepted by int()) stay errors.
    if value.__class__ is str and value.isascii() and value.isdigit():
        return int(value)
    raise _expected("an integer or a string of digits (epoch milliseconds)", value)


def _c_str(value: Any) -> str:
    if value.__class__ is str:
        return str(value)
    raise _expected("a string", value)


def _c_bool(value: Any) -> bool:
    if value.__class__ is bool:
        return bool(value)
    raise _expected("a boolean", value)


def _c_dec(value: Any) -> Decimal:
    if value.__class__ is str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if number.is_finite():
                return number
    raise _expected("a decimal string", value)


def _level(entry: Any, index: int) -> Any:
    if (entry.__class__ is list or entry.__class__ is tuple) and len(entry) == 2:
        return entry[index]
    raise _expected("a [price, quantity] pair", entry)


def _levels_fast(value: Any) -> Levels:
    # Hot path of every depth event. The filter keeps only pairs of strings that parse to finite
    # decimals (the walrus targets bind in this function's scope), so a length mismatch means a
    # bad entry somewhere; _diagnose then finds and names it. A non-pair entry raises ValueError
    # from the unpacking, which reaches _diagnose the same way.
    if value.__class__ is not list and value.__class__ is not tuple:
        raise ValueError("not an array")
    out = [
        (price, qty)
        for p, q in value
        if p.__class__ is str is q.__class__
        and (price := Decimal(p)).is_finite()
        and (qty := Decimal(q)).is_finite()
    ]
    # A two-character string unpacks as a pair ("12" -> "1", "2"): not a level. Checked once
    # per event, not per level: only a str entry can do that.
    if str in map(type, value):
        raise ValueError("a level that is a string")
    if len(out) != len(value):
        raise ValueError("bad level")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Field specs


@dataclasses.dataclass(frozen=True, slots=True)
class _Spec:
    attr: str
    key: str | None
    path: tuple[str, ...]
    kind: str  # int time str bool dec levels models custom context
    has_default: bool
    default: Any
    model: Any  # the element model of a "models" field
    convert: Callable[[Any], Any] | None


_SIMPLE_KINDS: dict[Any, str] = {str: "str", bool: "bool", Decimal: "dec"}


def _spec_of(cls: type, field: dataclasses.Field[Any], hint: Any) -> _Spec:
    key: str | None = field.metadata.get("key")
    convert = field.metadata.get("convert")
    has_default = field.default is not dataclasses.MISSING
    if field.default_factory is not dataclasses.MISSING:
        raise TypeError(f"{cls.__name__}.{field.name}: default_factory is not supported")
    # `X | None` is parsed as X; the None comes from the default.
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) != 1 or not has_default:
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported annotation {hint}")
        hint = args[0]
    model = None
    if key is None:
        kind = "context"
    elif convert is not None:
        kind = "custom"
    elif hint is int:
        kind = "time" if field.name.endswith("_time") else "int"
    elif hint in _SIMPLE_KINDS:
        kind = _SIMPLE_KINDS[hint]
    elif hint == Levels:
        kind = "levels"
    elif get_origin(hint) is tuple and len(get_args(hint)) == 2 and get_args(hint)[1] is ...:
        model = get_args(hint)[0]
        if not (isinstance(model, type) and issubclass(model, _Model)):
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported annotation {hint}")
        kind = "models"
    else:
        raise TypeError(f"{cls.__name__}.{field.name}: unsupported annotation {hint}")
    path = () if key is None else tuple(key.split("."))
    if len(path) > 2:
        raise TypeError(f"{cls.__name__}.{field.name}: keys nest at most one object deep")
    return _Spec(field.name, key, path, kind, has_default, field.default, model, convert)


# --------------------------------------------------------------------------------------------
# The fast path: one generated function per model


# Inline conversion of the value expression {v}: the first {v} is the lookup (possibly an
# assignment expression), later ones read `_v`. Anything unusual falls to the slow converter.
_TEMPLATES = {
    "int": "(_v if {v}.__class__ is int else _c_int(_v))",
    "time": "(_v if {v}.__class__ is int else _c_time(_v))",
    "str": "(_v if {v}.__class__ is str else _c_str(_v))",
    "bool": "(_v if {v}.__class__ is bool else _c_bool(_v))",
    # Decimal(str) raising InvalidOperation lands in _diagnose like any other failure.
    "dec": "(_x if {v}.__class__ is str and (_x := _D(_v)).is_finite() else _c_dec(_v))",
    "levels": "_levels_fast({v})",
    "models": "(tuple([{m}(_e) for _e in _v]) if {v}.__class__ is list else _c_list(_v))",
    "custom": "{c}({v})",
}


def _c_list(value: Any) -> Any:
    raise _expected("an array", value)


def _compile(cls: type[_Model], specs: tuple[_Spec, ...]) -> Callable[..., Any]:
    """Generate ``from_dict`` for ``cls``: lookups, checks and conversions in a straight line.

    The instance is made with ``object.__new__`` and each slot filled through its member
    descriptor, which is what the frozen dataclass ``__init__`` does too, minus the keyword
    argument handling and the per-field ``object.__setattr__`` lookups: about 40% less time
    per model. ``_diagnose`` reports any failure.
    """
    ns: dict[str, Any] = {
        "_new": object.__new__,
        "_D": Decimal,
        "_diagnose": _diagnose,
        "_levels_fast": _levels_fast,
        "_c_int": _c_int,
        "_c_time": _c_time,
        "_c_str": _c_str,
        "_c_bool": _c_bool,
        "_c_dec": _c_dec,
        "_c_list": _c_list,
    }
    params = ["cls", "d"]
    body: list[str] = []
    # Hoist each parent object once (Kline's "k", ForceOrder's "o"); a parent that only holds
    # optional fields may be absent.
    parents: dict[str, str] = {}
    for spec in specs:
        if len(spec.path) == 2 and spec.path[0] not in parents:
            parent = spec.path[0]
            local = f"_p{len(parents)}"
            parents[parent] = local
            required = any(s.path[:1] == (parent,) and not s.has_default for s in specs)
            get = f"d[{parent!r}]" if required else f"(d.get({parent!r}) or _EMPTY)"
            body.append(f"{local} = {get}")
            ns["_EMPTY"] = types.MappingProxyType({})
    body.append("o = _new(cls)")
    for i, spec in enumerate(specs):
        setter = f"_s{i}"
        ns[setter] = getattr(cls, spec.attr).__set__
        if spec.kind == "context":
            params.append(f"{spec.attr}={spec.attr}_default")
            ns[f"{spec.attr}_default"] = spec.default
            body.append(f"{setter}(o, {spec.attr})")
            continue
        container = "d" if len(spec.path) == 1 else parents[spec.path[0]]
        leaf = spec.path[-1]
        template = _TEMPLATES[spec.kind]
        ns[f"_m{i}"] = spec.model.from_dict if spec.model is not None else None
        ns[f"_c{i}"] = spec.convert
        if spec.has_default:
            ns[f"_d{i}"] = spec.default
            inner = template.format(v="_v", m=f"_m{i}", c=f"_c{i}")
            expr = f"(_d{i} if (_v := {container}.get({leaf!r})) is None else {inner})"
        else:
            expr = template.format(v=f"(_v := {container}[{leaf!r}])", m=f"_m{i}", c=f"_c{i}")
        body.append(f"{setter}(o, {expr})")
    body.append("return o")
    context = params[2:]
    signature = ", ".join(params[:2] + (["*", *context] if context else []))
    source = "\n".join(
        [
            f"def from_dict({signature}):",
            "    try:",
            *(f"        {line}" for line in body),
            "    except Exception as exc:",
            "        raise _diagnose(cls, d, exc) from exc",
        ]
    )
    exec(compile(source, f"<from_dict {cls.__qualname__}>", "exec"), ns)
    function: Callable[..., Any] = ns["from_dict"]
    function.__qualname__ = f"{cls.__qualname__}.from_dict"
    function.__doc__ = _Model.from_dict.__doc__
    function.source_code = source  # type: ignore[attr-defined]  # for debugging
    return function


# --------------------------------------------------------------------------------------------
# The slow path: find and name the bad field


def _label_of(cls: type[_Model], payload: Mapping[str, Any]) -> str:
    event = payload.get("e")
    return event if event in cls.EVENT_TYPES else cls.EVENT_LABEL


def _diagnose(cls: type[_Model], payload: Any, exc: BaseException) -> ParseError:
    """Build the ParseError for a payload the generated ``from_dict`` failed on."""
    if not isinstance(payload, Mapping):
        return ParseError(cls.EVENT_LABEL, f"expected a JSON object, got {_show(payload)}")
    label = _label_of(cls, payload)
    for spec in cls._specs:
        if spec.kind == "context":
            continue
        error = _check(spec, payload)
        if error is not None:
            field, attribute, reason = error
            return ParseError(label, reason, field=field, attribute=attribute)
    # The fast path failed on something the declarations accept: a bug in this module.
    return ParseError(label, f"internal parser error: {exc!r}")


def _check(spec: _Spec, payload: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """Return (field, attribute, reason) for a bad field, or None when it converts."""
    container: Any = payload
    for depth, part in enumerate(spec.path):
        if not isinstance(container, Mapping):
            where = ".".join(spec.path[:depth])
            return where, spec.attr, f"expected a JSON object, got {_show(container)}"
        if container.get(part) is None:
            if spec.has_default:
                return None
            where = ".".join(spec.path[: depth + 1])
            if part in container:
                return where, spec.attr, _expected(_WHAT[spec.kind], None).reason
            return where, spec.attr, "missing"
        container = container[part]
    value = container
    key = spec.key or spec.attr
    try:
        if spec.kind == "levels":
            if value.__class__ is not list and value.__class__ is not tuple:
                raise _expected(_WHAT["levels"], value)
            for i, entry in enumerate(value):
                try:
                    _c_dec(_level(entry, 0))
                    _c_dec(_level(entry, 1))
                except _Invalid:
                    reason = _expected("a [price, quantity] pair of decimal strings", entry)
                    return f"{key}[{i}]", f"{spec.attr}[{i}]", reason.reason
        elif spec.kind == "models":
            if value.__class__ is not list:
                raise _expected("an array", value)
            for i, item in enumerate(value):
                try:
                    spec.model.from_dict(item)
                except ParseError as error:
                    if error.field is None:
                        return f"{key}[{i}]", f"{spec.attr}[{i}]", error.reason
                    return (
                        f"{key}[{i}].{error.field}",
                        f"{spec.attr}[{i}].{error.attribute}",
                        error.reason,
                    )
        elif spec.kind == "custom":
            assert spec.convert is not None
            spec.convert(value)
        else:
            _SLOW[spec.kind](value)
    except _Invalid as error:
        return key, spec.attr, error.reason
    return None


_SLOW: dict[str, Callable[[Any], Any]] = {
    "int": _c_int,
    "time": _c_time,
    "str": _c_str,
    "bool": _c_bool,
    "dec": _c_dec,
}

_WHAT = {
    "int": "an integer",
    "time": "an integer or a string of digits (epoch milliseconds)",
    "str": "a string",
    "bool": "a boolean",
    "dec": "a decimal string",
    "levels": "an array of [price, quantity] pairs",
    "models": "an array",
    "custom": "a value",
}


# --------------------------------------------------------------------------------------------
# Rich display (Jupyter): every model as an HTML table

_HTML_ENTRIES = 10  # book levels or nested models shown per field; the rest are counted


def _html_table(model: _Model) -> str:
    rows = []
    for spec in type(model)._specs:
        value = _html_value(getattr(model, spec.attr), spec.kind)
        key = "" if spec.key is None else f"<code>{html.escape(spec.key)}</code>"
        rows.append(
            f"<tr><th style='text-align:left'>{html.escape(spec.attr)}</th>"
            f"<td style='text-align:left'>{value}</td><td>{key}</td></tr>"
        )
    caption = html.escape(type(model).__name__)
    return (
        f"<table><caption style='text-align:left'><b>{caption}</b></caption>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _html_value(value: Any, kind: str) -> str:
    if value is None:
        return "<i>None</i>"
    if kind == "time" and value.__class__ is int:
        try:
            when = _utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        except (OverflowError, ValueError):  # microseconds (timeUnit=MICROSECOND): no date
            return html.escape(str(value))
        return f"{value} <small>({when} UTC)</small>"
    if kind == "levels":
        shown = [
            f"<tr><td>{html.escape(str(price))}</td><td>{html.escape(str(qty))}</td></tr>"
            for price, qty in value[:_HTML_ENTRIES]
        ]
        head = "<tr><th>price</th><th>quantity</th></tr>"
        return f"<table>{head}{''.join(shown)}</table>{_html_more(len(value))}"
    if kind == "models":
        shown = [item._repr_html_() for item in value[:_HTML_ENTRIES]]
        return "".join(shown) + _html_more(len(value))
    return html.escape(str(value))


def _html_more(total: int) -> str:
    if total == 0:
        return "<i>none</i>"
    if total > _HTML_ENTRIES:
        return f"<small>… and {total - _HTML_ENTRIES} more</small>"
    return ""
