@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def daily(pages: int = 12) -> str:
    return report_pages(allow_failure(parse.map(fetch_page.map(range(pages)))))


api = ShopAPI(failure_rate=0.25, max_parallel=3)  # the same flaky day again, from its start
state = daily(return_state=True)
print(state.name, "-", state.result())
assert state.is_completed() and "1 page(s) failed" in state.result()
