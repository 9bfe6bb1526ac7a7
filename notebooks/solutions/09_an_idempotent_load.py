@task(on_rollback=[delete_page])
def load_page(page: int, rows: list[dict]) -> int:
    get_transaction().set("page", page)
    if page == DROPS_AT_PAGE:
        raise ConnectionError(f"page {page}: the warehouse connection was lost")
    with sqlite3.connect(WAREHOUSE) as db:  # one SQLite transaction: both or neither
        db.execute("DELETE FROM orders WHERE page = ?", (page,))
        db.executemany("INSERT INTO orders VALUES (:order_id, :page, :customer, :amount)",
                       [{**row, "page": page} for row in rows])
    return len(rows)


DROPS_AT_PAGE = None
monthly_load()
monthly_load()
print("orders after two runs:", count_orders())
assert count_orders() == 200
