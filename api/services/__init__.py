"""HTTP-free application logic the routes call: submission, experiments, datasets, prediction, enqueueing."""
