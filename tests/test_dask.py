"""Scaling out: the protocols and cross-validation on a real Dask cluster (loopback)."""

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from sklearn.model_selection import LeaveOneGroupOut, cross_validate  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from sklearn_s2au import (FrameClassifier, OpenSmileLLD, SpeakerNormaliser,  # noqa: E402
                          uar_scorer)
from sklearn_s2au import experiments  # noqa: E402
from sklearn_s2au.datasets import make_speech_au_corpus  # noqa: E402

TINY_NET = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def corpus():
    return make_speech_au_corpus(n_speakers=3, recordings_per_speaker=2, random_state=1)


def test_protocol_on_dask_equals_local_run(client, corpus):
    kwargs = dict(architectures=["Enc-InterAtt-Dec"], feature_sets=["eGeMAPSv02"],
                  aus=["AU17"], phases=["onset", "occurrence"], max_epochs=2,
                  network_params=TINY_NET, verbose=0, random_state=0)
    local = experiments.run_protocol(corpus, n_jobs=1, **kwargs)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = experiments.run_protocol(corpus, n_jobs=2, **kwargs)
    # the folds really ran on the cluster's workers
    assert len(stream.data) >= 6
    assert len({task["worker"] for task in stream.data}) == 2
    pd.testing.assert_frame_equal(local.drop(columns="seconds"),
                                  remote.drop(columns="seconds"))
    assert len(local) == 2 * 2 * 3   # 2 models (net + SVM) x 2 sub-classes x 3 folds


def test_cross_validate_on_dask_equals_local_run(client, corpus):
    X, y = corpus.X, corpus.labels("AU17", "occurrence")
    pipe = Pipeline([("lld", OpenSmileLLD("eGeMAPSv02")), ("norm", SpeakerNormaliser()),
                     ("clf", FrameClassifier(LinearSVC(class_weight="balanced")))])
    local = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                           scoring=uar_scorer)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                                scoring=uar_scorer, n_jobs=2)
    np.testing.assert_allclose(local["test_score"], remote["test_score"])
    assert len(local["test_score"]) == X["speaker"].nunique()
    # the folds ran on the cluster's workers
    assert len(stream.data) >= X["speaker"].nunique()
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])


def test_a_worker_killed_mid_protocol_loses_no_result(corpus, tmp_path):
    """Dask reschedules the fits of a dead worker; the table equals the local run's."""
    import os
    import signal
    import threading
    import time

    kwargs = dict(architectures=["Stacked-NoAtt"], feature_sets=["eGeMAPSv02"],
                  aus=["AU17"], svm=False, max_epochs=4, targets_per_fit=1,
                  network_params=TINY_NET, verbose=0, random_state=0)
    local = experiments.run_protocol(corpus, n_jobs=1, **kwargs)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        pids = client.run(os.getpid)
        victim = sorted(pids)[0]
        checkpoint = tmp_path / "fits"
        killed = []

        def kill_after_first_fit():
            deadline = time.time() + 120
            while time.time() < deadline and not list(checkpoint.glob("fit_*.csv")):
                time.sleep(0.05)
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(len(list(checkpoint.glob("fit_*.csv"))))

        killer = threading.Thread(target=kill_after_first_fit)
        killer.start()
        with joblib.parallel_backend("dask"):
            remote = experiments.run_protocol(corpus, n_jobs=2, checkpoint=checkpoint,
                                              **kwargs)
        killer.join()
    finally:
        client.close()
        cluster.close()
    # a worker really died mid-run: after the first fit, before the last
    assert len(killed) == 1 and 1 <= killed[0] < 3 * 4, killed
    assert len(list(checkpoint.glob("fit_*.csv"))) == len(local) == 3 * 4   # folds x targets
    pd.testing.assert_frame_equal(local.drop(columns="seconds"),
                                  remote.drop(columns="seconds"))
