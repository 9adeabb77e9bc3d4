"""Confusion, cluster→class maps and scores, checked against hand-computed figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acseg_core.evaluation import metrics


def test_confusion_counts_and_skips_ignored_and_nodata() -> None:
    clusters = np.array([[0, 1, 1], [2, 255, 0]], dtype=np.uint8)
    labels = np.array([[0, 1, -1], [1, 0, 5]])  # -1 unlabelled, 5 out of range
    conf = metrics.confusion_matrix(clusters, labels, n_clusters=3, n_classes=2)
    assert conf.tolist() == [[1, 0], [0, 1], [0, 1]]
    assert conf.dtype == np.int64


def test_confusion_rejects_size_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        metrics.confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2, 2)


def test_hungarian_square_is_a_permutation_maximising_matches() -> None:
    conf = np.array([[1, 9, 0], [8, 2, 0], [0, 3, 7]])
    assert metrics.hungarian_mapping(conf).tolist() == [1, 0, 2]


def test_hungarian_more_clusters_than_classes_leaves_some_unassigned() -> None:
    # cluster 2 is the best for class 0 in pixels, but 0/1 together are better overall
    conf = np.array([[5, 0], [0, 6], [4, 1]])
    mapping = metrics.hungarian_mapping(conf)
    assert mapping.tolist() == [0, 1, -1]
    s = metrics.scores(conf, mapping)
    assert s.pixel_accuracy == pytest.approx(11 / 16)
    # class 0: hits 5, predicted 5, truth 9 → 5/9 ; class 1: hits 6, predicted 6, truth 7 → 6/7
    assert s.per_class_iou == pytest.approx((5 / 9, 6 / 7))
    assert s.miou == pytest.approx((5 / 9 + 6 / 7) / 2)


def test_majority_map_merges_clusters_and_skips_empty_ones() -> None:
    conf = np.array([[5, 0], [0, 6], [4, 1], [0, 0]])
    mapping = metrics.majority_mapping(conf)
    assert mapping.tolist() == [0, 1, 0, -1]
    s = metrics.scores(conf, mapping)
    assert s.pixel_accuracy == pytest.approx(15 / 16)
    # class 0: hits 9, predicted 10, truth 9 → 9/10 ; class 1: hits 6, predicted 6, truth 7
    assert s.per_class_iou == pytest.approx((9 / 10, 6 / 7))


def test_fewer_clusters_than_classes_leaves_a_class_unpredicted() -> None:
    conf = np.array([[6, 1, 0], [0, 2, 3]])
    mapping = metrics.hungarian_mapping(conf)
    assert mapping.tolist() == [0, 2]
    s = metrics.scores(conf, mapping)
    assert s.pixel_accuracy == pytest.approx(9 / 12)
    # class 0: 6/(7+6-6)=6/7 ; class 1: never predicted → 0 ; class 2: 3/(5+3-3)=3/5
    assert s.per_class_iou == pytest.approx((6 / 7, 0.0, 3 / 5))
    assert s.miou == pytest.approx((6 / 7 + 3 / 5) / 3)


def test_absent_class_has_no_iou_and_is_left_out_of_miou() -> None:
    conf = np.array([[4, 0, 0], [0, 3, 0], [1, 0, 0]])  # class 2 has no labelled pixel
    mapping = metrics.hungarian_mapping(conf)
    s = metrics.scores(conf, mapping)
    assert math.isnan(s.per_class_iou[2])
    assert s.miou == pytest.approx((s.per_class_iou[0] + s.per_class_iou[1]) / 2)
    assert s.to_dict(["a", "b", "c"])["per_class_iou"]["c"] is None


def test_perfect_permuted_clustering_scores_one() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(20, 20))
    clusters = np.array([2, 0, 3, 1])[labels].astype(np.uint8)
    conf = metrics.confusion_matrix(clusters, labels, 4, 4)
    s = metrics.scores(conf, metrics.hungarian_mapping(conf))
    assert s.pixel_accuracy == 1.0 and s.miou == 1.0


def test_accumulator_sums_images_and_grows_open_ended_classes() -> None:
    acc = metrics.ConfusionAccumulator(n_clusters=2)
    first = acc.add(np.array([[0, 1]]), np.array([[0, 1]]))
    assert first.shape == (2, 2)
    acc.add(np.array([[1, 0]]), np.array([[3, -1]]))
    assert acc.matrix.tolist() == [[1, 0, 0, 0], [0, 1, 0, 1]]
    whole = metrics.confusion_matrix(
        np.array([[0, 1, 1, 0]]), np.array([[0, 1, 3, -1]]), n_clusters=2, n_classes=4
    )
    assert np.array_equal(acc.matrix, whole)
