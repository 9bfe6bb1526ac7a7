failed_runs = kernelflow.runs(flow="nightly", state="Failed")
past = kernelflow.runs.get(failed_runs[0].name)
failures = [r for r in past.task_runs if r.state.is_failed()]
for r in failures:
    print(r.name, "-", r.state.message)
assert [r.name for r in failures] == ["fetch_page-6"]
