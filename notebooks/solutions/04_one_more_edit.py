@task
def report(rows: list[dict]) -> str:
    return f"{len(rows)} orders, revenue {sum(row['amount'] for row in rows)} EUR (retried)"


requests_before = len(api.calls)
print(retried.retry())
again = kernelflow.last_run()
ran = [r.task_name for r in again.task_runs if r.state.name != "Cached"]
print("ran:", ran, "- new requests:", len(api.calls) - requests_before)
assert ran == ["report"] and len(api.calls) == requests_before
