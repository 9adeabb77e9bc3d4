"""Prediction: the read-out choice, tiled bounded-memory prediction of one image, the
prediction cache and streamed prediction of large collections."""
