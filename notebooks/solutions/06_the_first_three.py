@task
async def timed_fetch(page: int) -> int:
    await asyncio.sleep(0.05 + (page * 7 % 20) / 100)  # pages answer at different speeds
    return page


@flow
async def first_three(pages: int = 20) -> tuple[list[int], float]:
    started, firsts = time.perf_counter(), []
    for next_done in asyncio.as_completed(timed_fetch.map(range(pages))):
        firsts.append(await next_done)
        if len(firsts) == 3:
            return firsts, time.perf_counter() - started  # the flow has its answer here


firsts, answered_after = await first_three()
run_seconds = kernelflow.last_run().duration
print(f"{firsts} after {answered_after:.2f} s; the flow run ended after {run_seconds:.2f} s")
assert answered_after < 0.15 < run_seconds
