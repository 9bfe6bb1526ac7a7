for workers in (2, 3, 4):
    api.calls.clear()
    state = etl.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))(return_state=True)
    refused = sum(outcome.startswith("429") for _, outcome in api.calls)
    print(f"{workers} workers: {state.name:<9} {kernelflow.last_run().duration:.2f} s, {refused} refused")
    assert (refused == 0) == (workers <= 3)
# 3 is the fastest size with no 429: 2 is slower (six waves), 4 gets refusals.
