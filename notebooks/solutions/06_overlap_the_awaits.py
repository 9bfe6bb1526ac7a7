limit = asyncio.Semaphore(50)  # at most 50 requests in flight, shared by every run


@task
async def fetch_page_async(page: int) -> str:
    async with limit:
        return await async_api.get_async(page)


@flow
async def reviews_async(pages: int = 200) -> int:
    raws = await asyncio.gather(*fetch_page_async.map(range(pages)))
    return len(load(parse.map(raws)))


async_api.calls.clear()
print(await reviews_async(), f"reviews in {kernelflow.last_run().duration:.2f} s")
fetches = [r for r in kernelflow.last_run().task_runs if r.task_name == "fetch_page_async"]
print("fetch workers:", {r.worker for r in fetches}, "- refused:", sum(o != "200 OK" for _, o in async_api.calls))
assert len({r.worker for r in fetches}) == 1 and all(o == "200 OK" for _, o in async_api.calls)
assert kernelflow.last_run().duration < threaded_seconds * 2
