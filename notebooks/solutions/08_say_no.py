stand_in({"approved": False})  # headless runs only
result = await monthly_load()
print(result)
assert result == "not approved: nothing loaded"
# With Cancel instead, the run ends Cancelled and the cell raises CancelledRun; with
# `monthly_load(return_state=True)` you get the Cancelled state instead of an exception.
