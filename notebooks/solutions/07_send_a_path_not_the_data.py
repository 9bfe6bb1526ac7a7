import pathlib

path = pathlib.Path(tempfile.mkdtemp()) / "blob.txt"
path.write_text(blob)


@task
def size_of_file(path: str) -> int:
    with open(path) as file:
        return len(file.read())


@flow(task_runner=dask_runner)
def measure_file(path: str) -> int:
    return size_of_file.submit(path).result()


started = time.perf_counter()
assert measure_file(str(path)) == len(blob)
by_path = time.perf_counter() - started
print(f"by path: {by_path * 1000:.0f} ms, by value: {timings['dask'] * 1000:.0f} ms")
