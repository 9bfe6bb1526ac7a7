"""Why a cached task ran: compare a run's key parts with those of the task's last run."""

from __future__ import annotations

from kernelflow._results.keys import Part

# Most telling first: a code edit explains a miss better than new inputs do.
_INPUTS = "no cached result for these inputs"
_ORDER = ("source", "helper:", "global:", "closure:", "flow_parameters", "run_id")


def _describe(label: str, task_name: str) -> str:
    kind, _, name = label.partition(":")
    if kind == "source":
        return f"source of task `{task_name}` changed"
    if kind == "helper":
        return f"source of helper `{name}` changed"
    if kind == "global":
        return f"global `{name}` changed"
    if kind == "closure":
        return f"closure value `{name}` changed"
    if kind == "flow_parameters":
        return "flow parameters changed"
    if kind == "run_id":
        return "new flow run (the cache policy includes RUN_ID)"
    return _INPUTS


def explain_miss(old: list[Part] | None, new: list[Part], task_name: str) -> str:
    """``state.message`` for a run that found no entry: "cache miss: <what changed>"."""
    if old is None:
        return "cache miss: no cached result yet"
    before, after = dict(old), dict(new)
    changed = [label for label in after if before.get(label) != after[label]]
    changed += [label for label in before if label not in after]
    if not changed:
        return "cache miss: no cached result (it was cleared or never written)"

    def rank(label: str) -> int:
        return next((i for i, prefix in enumerate(_ORDER) if label.startswith(prefix)), len(_ORDER))

    texts = list(dict.fromkeys(_describe(label, task_name) for label in sorted(changed, key=rank)))
    # Once the code changed, that the inputs differ from the last run's says nothing more.
    return "cache miss: " + "; ".join(texts[:1] + [t for t in texts[1:3] if t != _INPUTS])
