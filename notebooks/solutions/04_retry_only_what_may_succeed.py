attempts = []


def only_transient(task, task_run, state) -> bool:
    return isinstance(state.result(raise_on_failure=False), ConnectionError)


@task(retries=3, retry_delay_seconds=0, retry_condition_fn=only_transient)
def check_amount(amount: int) -> int:
    attempts.append(amount)
    if amount < 0:
        raise ValueError(f"negative amount {amount}")
    return amount


@flow
def check(amount: int) -> int:
    return check_amount(amount)


print(check(-5, return_state=True).name, "after", len(attempts), "attempt(s)")
assert attempts == [-5]
