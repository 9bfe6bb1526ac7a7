"""Tasks and flows on methods and callable objects, names, keys and reserved parameters."""

from __future__ import annotations

import asyncio
import inspect

import pydantic
import pytest

from kernelflow import Flow, Task, flow, task
from kernelflow.exceptions import (
    InvalidNameError,
    ParameterBindError,
    ReservedArgumentError,
)


class Counter:
    def __init__(self, start):
        self.start = start

    @task
    def add(self, n):
        return self.start + n

    @task
    async def add_later(self, n):
        await asyncio.sleep(0)
        return self.start + n

    @task
    @classmethod
    def kind(cls):
        return cls.__name__

    @classmethod
    @task
    def kind_other_order(cls):
        return cls.__name__

    @staticmethod
    @task
    def constant():
        return 7

    @task
    @staticmethod
    def constant_inside():
        return 8

    @flow
    def total(self, n):
        return self.add(n) + self.add(n)


def test_instance_methods_bind_their_instance_per_object():
    a, b = Counter(1), Counter(100)
    assert a.add(2) == 3 and b.add(2) == 102 and a.add(2) == 3
    assert isinstance(a.add, Task) and Counter.add.__self__ is None
    assert Counter.add(a, 5) == 6  # called through the class with the instance


def test_async_instance_methods_and_flows_on_methods():
    assert asyncio.run(Counter(1).add_later(1)) == 2
    assert Counter(10).total(1) == 22
    assert isinstance(Counter(10).total, Flow)


def test_classmethods_in_either_order_and_staticmethods():
    assert Counter.kind() == "Counter" and isinstance(Counter.kind, Task)
    assert Counter(0).kind() == "Counter"
    assert Counter.kind_other_order() == "Counter"
    assert Counter.constant() == 7 and Counter(0).constant() == 7
    assert Counter.constant_inside() == 8 and Counter(0).constant_inside() == 8


def test_the_instance_is_a_parameter_the_cache_key_fn_sees_and_is_never_copied():
    seen = []

    class Model(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(ignored_types=(Task,))
        x: int

        @task(cache_key_fn=lambda ctx, params: seen.append(params) or f"x={params['self'].x}")
        def get(self):
            return self

    @flow
    def pipeline(model):
        return model.get(return_state=True), model.get(return_state=True)

    model = Model(x=3)
    first, second = pipeline(model)
    assert first.name == "Completed" and second.name == "Cached"
    assert first.result() is model
    assert seen[0] == {"self": model}


def test_task_run_name_can_read_attributes_of_self():
    class Loader:
        source = "db"

        @task(task_run_name="load-{self.source}-{day}")
        def load(self, day):
            from kernelflow.runtime import task_run

            return task_run.name

    assert Loader().load(day=3) == "load-db-3"


def test_callable_objects_are_tasks_named_after_their_class():
    class Doubler:
        def __call__(self, x):
            return 2 * x

    doubler = task(Doubler())
    assert doubler.name == "Doubler" and doubler(4) == 8
    assert doubler.source_code is None
    assert doubler.task_key.startswith("Doubler-")

    @flow
    def pipeline():
        return doubler(5)

    assert pipeline() == 10


def test_task_key_and_source_code():
    @task
    def first():
        return 1

    @task
    def second():
        return 2

    assert first.task_key.startswith("first-") and first.task_key != second.task_key
    assert "def first" in first.source_code and "return 1" in first.source_code
    assert first.with_options(name="again").task_key == first.task_key


def test_bad_arguments_raise_a_type_error_naming_the_task_and_its_signature():
    @task
    def combine(a, b=1):
        return a + b

    with pytest.raises(ParameterBindError, match=r"task 'combine'.*combine\(a, b=1\)"):
        combine(b=2)
    with pytest.raises(TypeError, match="combine"):
        combine(1, 2, 3)

    @flow
    def pipeline(x):
        return x

    with pytest.raises(ParameterBindError, match="flow 'pipeline'"):
        pipeline()


def test_a_keyword_only_parameter_is_never_bound_by_position():
    @task
    def scale(x, *, by):
        return x * by

    @flow
    def pipeline():
        return scale(2, by=3), scale.map([1, 2], by=2).result()

    # As Python says: one positional argument, not two (it was once bound by position).
    with pytest.raises(ParameterBindError, match="positional argument"):
        scale(2, 3)
    with pytest.raises(ParameterBindError, match="positional argument"):
        scale.submit(2, 3)
    assert pipeline() == (6, [2, 4])


@pytest.mark.parametrize("reserved", ["return_state", "wait_for"])
def test_reserved_parameter_names_are_refused_at_decoration(reserved):
    source = f"def fn({reserved}):\n    return 1\n"
    namespace: dict = {}
    exec(source, namespace)
    with pytest.raises(ReservedArgumentError, match=f"'{reserved}' is a reserved argument"):
        task(namespace["fn"])
    with pytest.raises(ReservedArgumentError):
        flow(namespace["fn"])


@pytest.mark.parametrize("name", ["my/flow", "my%flow", "a<b", "a>b", "a&b"])
def test_flow_names_with_banned_characters_are_refused(name):
    with pytest.raises(InvalidNameError, match="invalid character"):
        flow(name=name)(lambda: 1)


def test_default_flow_names_and_versions():
    assert Flow(lambda: 1).name == "unknown-lambda"

    def my_pipeline():
        return 1

    made = flow(my_pipeline)
    assert made.name == "my-pipeline"
    assert isinstance(made.version, str) and len(made.version) == 32  # this file's hash
    assert flow(version="v2")(my_pipeline).version == "v2"


def test_a_non_callable_is_refused():
    with pytest.raises(TypeError, match="decorates a function"):
        Task(42)
    with pytest.raises(TypeError):
        Flow({})


def test_non_string_flow_names_get_prefects_message():
    def name_maker():
        return "x"

    with pytest.raises(TypeError, match="Expected string for flow parameter 'name'; got int"):
        flow(name=1)(lambda: 1)
    with pytest.raises(TypeError, match="got function instead. Perhaps you meant to call it?"):
        flow(name=name_maker)(lambda: 1)


def test_quote_unquote_gives_the_value():
    from kernelflow import quote

    value = {"big": [1, 2]}
    assert quote(value).unquote() is value


@pytest.mark.parametrize(
    ("decorator", "cls", "fixed"), [(task, Task, {"version"}), (flow, Flow, set())]
)
def test_every_option_shows_in_the_decorator_and_with_options_signatures(decorator, cls, fixed):
    # What Jupyter's Shift-Tab shows: the options, not **options.
    init = set(inspect.signature(cls.__init__).parameters) - {"self", "fn"}
    assert set(inspect.signature(decorator).parameters) == init | {"__fn"}
    assert set(inspect.signature(cls.with_options).parameters) == init - fixed | {"self"}


def test_with_options_does_not_change_a_tasks_version():
    @task(version="1")
    def step():
        return 1

    with pytest.raises(TypeError, match=r"cannot change version: .* @task\(\.\.\.\)"):
        step.with_options(version="2")
    assert step.with_options(retries=1).version == "1"
