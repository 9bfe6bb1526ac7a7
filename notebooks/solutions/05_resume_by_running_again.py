COUNTRIES = {"ada": "UK", "alan": "UK", "grace": "US", "edsger": "NL", "barbara": "US"}


@task
def enrich(rows: list[dict]) -> list[dict]:
    return [{**row, "country": COUNTRIES[row["customer"]]} for row in rows]


@flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
def etl_enriched(pages: int = 12) -> str:
    return report(load(enrich.map(parse.map(fetch_page.map(range(pages))))))


print(etl_enriched(return_state=True).name)


@task
def enrich(rows: list[dict]) -> list[dict]:
    return [{**row, "country": COUNTRIES.get(row["customer"], "unknown")} for row in rows]


requests_before = len(api.calls)
print(etl_enriched(), "- requests:", len(api.calls) - requests_before)
assert len(api.calls) == requests_before  # every page came from the cache
