@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def fresh_etl() -> str:
    closed = fetch_page.map(range(11))
    today = fetch_page.with_options(refresh_cache=True).submit(11)
    return report(load(parse.map([*closed, today])))


requests_before = len(api.calls)
fresh_etl(), fresh_etl()
print("requests for two runs:", len(api.calls) - requests_before)
assert len(api.calls) - requests_before == 2  # page 11, once per run
