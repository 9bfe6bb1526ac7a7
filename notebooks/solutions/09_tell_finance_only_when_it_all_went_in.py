announcements = []


def announce(txn) -> None:
    announcements.append(f"page {txn.get('page')} loaded")


load_page = load_page.with_options(on_commit=[announce])

DROPS_AT_PAGE = 6
monthly_load(return_state=True)
print("after the failed run:", announcements)
assert announcements == []

DROPS_AT_PAGE = None
monthly_load()
print("after the good run:", announcements)
assert len(announcements) == 8 and count_orders() == 200
