@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def etl_two(pages: int = 8) -> str:
    return report(load(parse.map(fetch_page.map(range(pages)))))


etl_two()
seconds = kernelflow.last_run().duration
print(f"two workers: {seconds:.2f} s")  # four waves of two requests: about 4 x 0.12 s
assert 0.45 < seconds < 2
