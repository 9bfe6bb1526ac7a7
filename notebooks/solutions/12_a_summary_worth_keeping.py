@task
def summarise(counts: list[int]) -> int:
    get_run_logger().info("%d orders on %d pages", sum(counts), len(counts))
    return sum(counts)


@flow
def nightly(pages: int = 3) -> int:
    parsed = parse.map([page_of_orders(p) for p in range(pages)]).result()
    return summarise([len(rows) for rows in parsed])


nightly()
name = kernelflow.last_run().name
summary = [m for m in messages(kernelflow.runs.get(name)) if m.endswith("pages")]
print(summary)
assert summary == ["75 orders on 3 pages"]
