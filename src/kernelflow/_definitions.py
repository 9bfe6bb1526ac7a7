"""What ``Task`` and ``Flow`` share: methods, names, keys, hooks' decorator forms.

A task or flow may wrap a plain function, an instance method, a ``classmethod``, a
``staticmethod`` or any callable object, as in Prefect. ``Definition.__get__`` makes
``obj.my_task`` a copy of the task bound to ``obj``: calls on it pass ``obj`` as the
first argument (``self``), so it is a parameter of the run like any other (a cache
key function sees it). A classmethod binds the class the same way.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

from kernelflow import _options as check
from kernelflow._engine.inputs import Signature
from kernelflow._lazy_imports import blake2b, hashlib
from kernelflow.exceptions import (
    InvalidNameError,
    InvalidOptionError,
    ParameterBindError,
    ReservedArgumentError,
)

RESERVED_PARAMETERS = ("return_state", "wait_for")
_BANNED_NAME_CHARACTERS = "/%&><"


def unwrap(kind: str, fn: Any) -> tuple[Callable[..., Any], str | None]:
    """The function to run and how it binds: "classmethod", "staticmethod" or None."""
    if isinstance(fn, classmethod):
        return fn.__func__, "classmethod"
    if isinstance(fn, staticmethod):
        return fn.__func__, "staticmethod"
    if not callable(fn):
        raise TypeError(f"@{kind} decorates a function or callable object, not {fn!r}.")
    return fn, None


def is_async(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine (an ``async def``, or an object whose
    ``__call__`` is one)."""
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isfunction(fn) and inspect.iscoroutinefunction(_call_method(fn))


def _call_method(fn: Any) -> Any:
    """A callable object's ``__call__`` (None for a function, or anything without one)."""
    try:
        return type(fn).__call__
    except AttributeError:
        return None


def function_name(fn: Any) -> str:
    """``fn.__name__``, or the class name of a callable object (or a mock) without one."""
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__


def check_name(option: str, value: Any) -> str | None:
    """A name given to a flow: a non-empty string without ``/ % & > <`` (Prefect bans
    them because names become parts of URLs and paths)."""
    if value is not None and not isinstance(value, str):
        hint = " Perhaps you meant to call it?" if callable(value) else ""
        raise InvalidOptionError(
            f"Expected string for flow parameter {option!r}; got {type(value).__name__} "
            f"instead.{hint}"
        )
    value = check.name(option, value)
    if value is not None and any(c in value for c in _BANNED_NAME_CHARACTERS):
        raise InvalidNameError(
            f"Name {value!r} contains an invalid character; these are not allowed: "
            f"{' '.join(_BANNED_NAME_CHARACTERS)}."
        )
    return value


def check_reserved(signature: inspect.Signature, kind: str, name: str) -> None:
    for reserved in RESERVED_PARAMETERS:
        if reserved in signature.parameters:
            raise ReservedArgumentError(
                f"{reserved!r} is a reserved argument name and cannot be used as a "
                f"parameter of {kind} {name!r}: every {kind} call takes it as a keyword. "
                "Rename the parameter."
            )


def task_key(fn: Any) -> str:
    """``<name>-<hash of where it is defined>``: the same for the same code in every
    process, different for two functions of one name in different places."""
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        qualname = type(fn).__qualname__
    code = getattr(fn, "__code__", None) or getattr(_call_method(fn), "__code__", None)
    where = (
        f"{code.co_filename}:{code.co_firstlineno}"
        if code is not None
        else f"{type(fn).__module__}.{type(fn).__qualname__}"
    )
    digest = blake2b(where.encode(), digest_size=5).hexdigest()
    return f"{qualname.split('.')[-1]}-{digest}"


def read_source(fn: Any) -> str | None:
    """The function's source (None for callable objects, builtins, or no source)."""
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        return None
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def file_version(fn: Any) -> str | None:
    """A hash of the file the function is defined in (Prefect's default flow version);
    None in a notebook cell or at a prompt, where there is no such file."""
    try:
        path = inspect.getsourcefile(fn)
    except TypeError:
        return None
    if not path or path.startswith("<") or "ipykernel_" in path:
        return None
    try:
        with open(path, "rb") as file:
            return hashlib.md5(file.read(), usedforsecurity=False).hexdigest()
    except OSError:
        return None


def hook_decorator(option: str) -> Callable[[Any, Callable[..., Any]], Callable[..., Any]]:
    """The decorator form of a hook option: ``@my_task.on_failure`` adds a hook."""

    def register(self: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
        getattr(self, f"{option}_hooks").append(check.hook(option, fn))
        self._plain = None  # a task's run plan is worked out again (_engine/plans.py)
        return fn

    register.__name__ = option
    register.__doc__ = f"Decorator form: ``@obj.{option}`` adds a hook to ``{option}``."
    return register


class Definition:
    """Behaviour shared by Task and Flow: binding to instances and classes, and
    binding call arguments to parameters with errors that name the task or flow."""

    __self__: Any = None
    _method_kind: str | None = None
    _kind = "task"
    name: str
    signature: Any

    def _take_function(self, fn: Any, options: dict[str, Any]) -> Callable[..., Any]:
        """The start of ``__init__`` (``options``: its ``locals()``): keep every option as
        given, so ``with_options()`` can rebuild from them, and take the function to run,
        how it binds and its shape. Returns the function."""
        self._options = {k: v for k, v in options.items() if k not in ("self", "fn", "__class__")}
        self.fn, self._method_kind = unwrap(self._kind, fn)
        self.isasync = is_async(self.fn)
        # A generator function: calling it streams its items (_engine/streaming.py)
        self.isgenerator = inspect.isgeneratorfunction(self.fn)
        self.signature = Signature(self.fn)
        return self.fn

    def _read_as(self, fn: Any) -> None:
        """Take the function's name, docstring and module, as ``functools.wraps`` does."""
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = function_name(fn)
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
        self.__wrapped__ = fn

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if self._method_kind == "staticmethod":
            return self
        target = owner if self._method_kind == "classmethod" else instance
        if target is None:
            return self
        bound = copy.copy(self)
        bound.__self__ = target
        return bound

    def _with_self(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return args if self.__self__ is None else (self.__self__, *args)

    def bind_parameters(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], defaults: bool = True
    ) -> dict[str, Any]:
        """Call arguments as a parameters dict (``ParameterBindError`` if they don't fit)."""
        try:
            if self.__self__ is not None:  # a method's task: its instance (or class) first
                args = (self.__self__, *args)
            return self.signature.bind(args, kwargs, defaults=defaults)
        except TypeError as error:
            raise ParameterBindError(
                f"Error binding parameters for {self._kind} {self.name!r}: {error}. "
                f"Its signature is {self.name}{self.signature.signature}."
            ) from None


def caching_options(task: Any, options: dict[str, Any], not_set: Any) -> None:
    """Set ``persist_result``, ``cache_policy`` and ``caches`` on a task as Prefect does.

    Any option about results (a cache policy, ``cache_key_fn``, ``result_storage``,
    ``result_serializer``, ``result_storage_key``) turns persistence on; with it on, the
    policy defaults to DEFAULT. ``persist_result=False`` turns caching off (NO_CACHE).
    """
    given = options["cache_policy"]
    persist = check.optional_bool("persist_result", options["persist_result"])
    set_any = any(options[name] is not None for name in _RESULT_OPTIONS)
    if given is not_set and persist is None and not set_any:
        # Most tasks: what the general case below gives them, without its imports.
        task.persist_result = None
        task.cache_policy = DEFAULT_POLICY
        task.caches = False
        task.caches_if_persisted = True
        return
    from kernelflow._results.policies import DEFAULT, NONE, KeyFnPolicy, NoCache

    policy = _policy(given, not_set)
    # As Prefect compares: only the NO_CACHE object itself (not its class) asks nothing.
    asked = given not in (None, not_set, NONE) or set_any
    if persist is None and asked:
        persist = True
    if persist is False:
        if policy not in (None, not_set) and not isinstance(policy, NoCache):
            import logging

            logging.getLogger("kernelflow.tasks").warning(
                "Ignoring `cache_policy` because `persist_result` is False (task %r).",
                task.name,
            )
        policy = None if policy is None else NONE
    elif policy is not_set:
        if options["result_storage_key"] is not None:
            policy = None
        elif options["cache_key_fn"] is not None:
            policy = KeyFnPolicy(options["cache_key_fn"])
        else:
            policy = DEFAULT
    task.persist_result = persist
    task.cache_policy = policy
    keyed = options["cache_key_fn"] is not None or options["result_storage_key"] is not None
    usable = keyed or (policy is not None and not isinstance(policy, NoCache))
    task.caches = persist is True and usable
    # A task that set nothing about results caches with DEFAULT in a flow with
    # persist_result=True (the flow's option fills in the task's, as in Prefect).
    task.caches_if_persisted = persist is None and usable


_RESULT_OPTIONS = ("cache_key_fn", "result_storage", "result_serializer", "result_storage_key")


class _DefaultPolicy:
    """Stands in for DEFAULT, the policy of a task that set nothing about results, until
    ``Task.cache_policy`` is read: most tasks never use theirs (only persisted results are
    cached), and importing the policies cost a first ``@task`` more than the rest of it."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "DEFAULT_POLICY"  # the one instance, in a process pool's workers too

    def __repr__(self) -> str:
        return "DEFAULT (imported when read)"


DEFAULT_POLICY = _DefaultPolicy()


def _policy(value: Any, not_set: Any) -> Any:
    if value is None or value is not_set:
        return value
    from kernelflow._results.policies import CachePolicy

    if isinstance(value, type) and issubclass(value, CachePolicy):
        value = value()  # Prefect accepts the class of a policy too
    if not isinstance(value, CachePolicy):
        raise InvalidOptionError(
            f"cache_policy={value!r} is not valid: cache_policy must be a policy from "
            "kernelflow.cache_policies, e.g. INPUTS, or None."
        )
    return value


def with_options(definition: Any, options: dict[str, Any], hooks: tuple[str, ...]) -> Any:
    """A new task or flow like ``definition``, with ``options`` changed (its hooks kept,
    including those added with the decorator forms since)."""
    kind = type(definition).__name__
    fixed = set(options) & _NOT_WITH_OPTIONS.get(kind, set())
    if fixed:
        raise TypeError(
            f"with_options() cannot change {', '.join(sorted(fixed))}: it belongs to the "
            f"{kind.lower()}'s definition; give it in @{kind.lower()}(...)"
        )
    unknown = set(options) - set(definition._options)
    if unknown:
        raise TypeError(f"with_options() got unknown option(s): {', '.join(sorted(unknown))}")
    current = dict(definition._options)
    current.update({option: getattr(definition, f"{option}_hooks") for option in hooks})
    if "tags" in current:
        current["tags"] = set(definition.tags)
    fn = definition.fn
    if definition._method_kind is not None:
        fn = classmethod(fn) if definition._method_kind == "classmethod" else staticmethod(fn)
    new = type(definition)(fn, **{**current, **options})
    new.__self__ = definition.__self__
    return new


# As in Prefect: a task's version is its definition's, not something to vary per use.
_NOT_WITH_OPTIONS = {"Task": {"version"}}


def advertise_options(cls: type, decorator: Callable[..., Any]) -> None:
    """Show every option of ``cls`` in the signatures of ``decorator`` and
    ``cls.with_options`` (what Jupyter's Shift-Tab and ``inspect.signature`` read);
    both take ``**options``, which ``cls.__init__`` checks."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    options = [
        parameter.replace(kind=keyword)
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "fn")
    ]
    first = inspect.Parameter("__fn", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    decorator.__signature__ = inspect.Signature([first, *options])  # type: ignore[attr-defined]
    fixed = _NOT_WITH_OPTIONS.get(cls.__name__, set())
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    cls.with_options.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [self_parameter, *(option for option in options if option.name not in fixed)]
    )
