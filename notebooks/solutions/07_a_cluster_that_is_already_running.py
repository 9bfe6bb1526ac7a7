from distributed import LocalCluster

cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0")
on_existing = score_pages.with_options(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
assert on_existing(raws[:1]) == expected[:1]
print("scored on", cluster.scheduler_address)
cluster.close()  # a cluster you started is yours to close
