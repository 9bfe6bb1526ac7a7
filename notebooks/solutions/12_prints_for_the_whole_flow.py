@task
def plain_parse(raw: str) -> list[dict]:
    rows = rows_of(raw)
    print(f"parsed {len(rows)} rows")
    return rows


@flow(log_prints=True)
def nightly(pages: int = 3) -> int:
    print("starting")
    return sum(len(rows) for rows in plain_parse.map([page_of_orders(p) for p in range(pages)]).result())


nightly()
logged = messages(kernelflow.last_run())
print([m for m in logged if m.startswith(("starting", "parsed"))])
assert "starting" in logged and logged.count("parsed 25 rows") == 3  # the tasks inherit it
