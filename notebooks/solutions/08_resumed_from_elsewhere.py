def approve_when_paused():
    while not kernelflow.paused_runs():
        time.sleep(0.05)
    kernelflow.resume_flow_run(kernelflow.paused_runs()[0].id, {"approved": True})


threading.Timer(1.0, approve_when_paused).start()
result = await monthly_load()
print(result)
assert result.startswith("loaded 200 orders")
# The form shows for about a second, then says the run was resumed, and by what input.
