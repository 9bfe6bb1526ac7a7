def test_report():
    rows = [{"order_id": 1, "customer": "ada", "amount": 10},
            {"order_id": 2, "customer": "alan", "amount": 15}]
    assert report.fn(rows) == "2 orders, revenue 25 EUR"


latest = kernelflow.last_run()
test_report()
assert kernelflow.last_run() is latest  # .fn records nothing
print("test_report passed")
