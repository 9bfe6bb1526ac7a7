@task(retries=2, cache_policy=INPUTS)
def fetch_page(page: int) -> str:
    return api.get(page)


@task
def parse(raw: str) -> list[dict]:  # the first version: trusts every amount
    rows = []
    for line in raw.splitlines():
        order_id, customer, amount = line.split(",")
        rows.append({"order_id": int(order_id), "customer": customer, "amount": int(amount)})
    return rows


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
async def month_end(pages: int = PAGES) -> int | None:
    raws = await asyncio.gather(*fetch_page.map(range(pages)))  # every page, then parse
    parsed = await asyncio.gather(*parse.map(raws))
    revenue = sum(row["amount"] for rows in parsed for row in rows)
    print(f"for approval: {revenue} EUR from {pages} pages")
    answer = await pause_flow_run(timeout=60, wait_for_input=Approval)
    return revenue if answer.approved else None


# 3. The first run: page 4 breaks parse.
first = await month_end(return_state=True)
requests_before_retry = len(api.calls)
print(first.name, "-", first.message, f"- {requests_before_retry} requests")
assert first.is_failed() and "ValueError" in first.message


# 4. The fix, then the retry.
@task
def parse(raw: str) -> list[dict]:
    rows = []
    for line in raw.splitlines():
        order_id, customer, amount = line.split(",")
        if amount.isdigit():  # a cancelled order has no amount: leave it out
            rows.append({"order_id": int(order_id), "customer": customer, "amount": int(amount)})
    return rows


stand_in({"approved": True})  # headless runs only: you use the form
revenue = await kernelflow.last_run().retry()
print("after the fix:", revenue, "EUR;", len(api.calls) - requests_before_retry, "new requests")

# 5. Once more: the fetches come from the cache.
stand_in({"approved": True})
assert await month_end() == revenue
print("fetch states:", sorted({r.state.name for r in kernelflow.last_run().task_runs
                               if r.task_name == "fetch_page"}))

# 6.
check_month_end(revenue, requests_before_retry)
