in_other_kernel("OUTAGE, DELAY = set(), 3" + DEFINE)
other.execute("nightly(pages=12)")  # returns at once: the run starts in the other kernel
time.sleep(1)
other_manager.restart_kernel(now=True)  # mid-run
other.wait_for_ready(timeout=60)
crashed = kernelflow.runs(flow="nightly")[0]
print(crashed.name, crashed.state.name, "-", crashed.state.message)
assert crashed.state.name == "Crashed"
