"""Model plumbing: file loaders, motion modules, annotator weights, device policy, runtime, catalog, schedulers."""
