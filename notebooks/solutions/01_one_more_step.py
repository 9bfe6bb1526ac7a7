@task
def best_customer(rows: list[dict]) -> str:
    totals = {}
    for row in rows:
        totals[row["customer"]] = totals.get(row["customer"], 0) + row["amount"]
    return max(totals, key=totals.get)


@flow
def etl(pages: int = 8) -> tuple[str, str]:
    parsed = [parse(fetch_page(page)) for page in range(pages)]
    rows = load(parsed)
    return report(rows), best_customer(rows)


display(etl.visualize(pages=3))  # one arrow into best_customer, from load
print(etl())
