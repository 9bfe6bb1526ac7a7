@flow(task_runner=processes)
def score_all(raws: list[str]) -> list[int]:
    return score.map(raws).result()


@flow
def scored_etl(pages: int = 4) -> list[int]:
    raws = fetch_page.map(range(pages)).result()  # threads: the four waits overlap
    return score_all(raws)                        # processes: the scores compute together


scores = scored_etl()
assert scores == threaded_scores
scores
